"""The GPU run's packed-seeds step: aggregate training throughput of K seeds trained as one
packed model, K = 1, 3, 5 (ML-1M at max_len 200 and Beauty at 50; SASRec and STOSA, `none`).

HOOK: packed seeds are built in parallel (awr/train/packed*). Until `run_packed_trials` is
importable from awr.train.packed this step prints why and exits UNAVAILABLE (3), which the
run records as `unavailable`; once it lands, check the call in `packed_seconds` against its
signature (assumed here: run_packed_trials(configs, data_dir=..., log=None), training every
config for its max_epochs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from awr.benchmarks.gpu_plan import UNAVAILABLE
from awr.config import TrialConfig
from awr.data.batches import train_row_lengths
from awr.trial import load_data

EPOCHS = 2
WORKLOADS = {
    "full": [
        (dataset, max_len, backbone)
        for dataset, max_len in (("ml-1m", 200), ("beauty", 50))
        for backbone in ("sasrec", "stosa")
    ],
    "smoke": [("synthetic", 10, "sasrec")],
}


def packed_seconds(run_packed_trials: Any, configs: list[TrialConfig], data_dir: str | None):
    """Wall seconds of training `configs` (seeds of one config) as one pack."""
    started = time.perf_counter()
    run_packed_trials(configs, data_dir=data_dir, log=None)  # HOOK: check against the API
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awr.benchmarks.packed_seeds")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", choices=tuple(WORKLOADS), default="full")
    parser.add_argument("--k", default="1,3,5", help="pack sizes")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        from awr.train.packed import run_packed_trials  # HOOK: the packed-seeds helper's API
    except ImportError as error:
        print(f"packed seeds not available yet ({error}); step skipped", file=sys.stderr)
        return UNAVAILABLE
    records: list[dict[str, Any]] = []
    for dataset, max_len, backbone in WORKLOADS[args.size]:
        base = TrialConfig(
            dataset=dataset, backbone=backbone, max_len=max_len, device=args.device,
            max_epochs=EPOCHS, patience=EPOCHS,
        )  # fmt: skip
        rows = len(train_row_lengths(load_data(base, args.data_dir), max_len))
        for k in (int(part) for part in args.k.split(",")):
            configs = [base.replace(seed=seed) for seed in range(1, k + 1)]
            seconds = packed_seconds(run_packed_trials, configs, args.data_dir)
            records.append(
                {
                    "dataset": dataset, "max_len": max_len, "backbone": backbone,
                    "mechanism": "none", "packed_seeds": k, "seconds": seconds,
                    "packed_sequences_per_second": k * rows * EPOCHS / seconds,
                }
            )  # fmt: skip
            args.out.write_text(json.dumps(records, indent=2) + "\n")
            print(f"{dataset} L{max_len} {backbone} K={k}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
