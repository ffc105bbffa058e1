"""awr's command line, run from a clone: `python orchestrate.py --sweep`, `--trial key=value`,
`--data-stats NAME`, `--list`, `--report SWEEP`, `--ui` (or subcommands: `python orchestrate.py
sweep --help`). The same as the installed `awr` command; see awr/cli/."""

from __future__ import annotations

import sys

from awr.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="orchestrate.py"))
