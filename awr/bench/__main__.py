"""`python -m awr.bench [options]` runs the harness (awr/bench/cli.py); `python -m awr.bench gpu
--out DIR ...` the prepared GPU run (awr/bench/gpu_run.py)."""

from __future__ import annotations

import sys

if __name__ == "__main__":  # not in the processes `--packed` spawns, which import this module
    if sys.argv[1:2] == ["gpu"]:
        from awr.bench.gpu_run import main as gpu_main

        sys.exit(gpu_main(sys.argv[2:]))
    from awr.bench.cli import cli

    sys.exit(cli())
