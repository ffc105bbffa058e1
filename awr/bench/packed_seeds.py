"""Packed seeds against separate trials: aggregate training throughput of K seeds of one config
trained as one packed model (awr.packed_trial.packed_trainer) and as K separate trials one
after another on the same threads (awr.train.trainer.Trainer), K = 1, 3, 5.

    python -m awr.bench.packed_seeds --device cpu --size cpu --out packed-cpu.json

Only training epochs are timed (the same steps, negatives and dropout draws either way);
evaluation is per member in both cases and packing does not change it. Each workload first runs
one untimed epoch to warm allocators and caches. A record per (workload, K):
`separate_sequences_per_second` (K trials' sequences over the sum of their epoch seconds),
`packed_sequences_per_second` and `packed_speedup` (their ratio), measured back to back.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from awr.bench.record import write_json
from awr.bench.workload import random_rows
from awr.config import TrialConfig
from awr.data.batches import build_eval_tensors, build_train_tensors
from awr.models.registry import build_model
from awr.packed_trial import packed_trainer
from awr.train.trainer import Trainer
from awr.trial import load_data, resolve_groups

EPOCHS = 1
PAIRS = (("sasrec", "none"), ("sasrec", "simple"), ("stosa", "none"), ("stosa", "simple"))
WORKLOADS = {
    "full": [(d, length, b, m) for d, length in (("ml-1m", 200), ("beauty", 50)) for b, m in PAIRS],
    "cpu": [(d, length, b, m) for d, length in (("ml-1m", 50), ("ml-1m", 200)) for b, m in PAIRS],
    "beauty": [("beauty", 50, b, m) for b, m in PAIRS],
    "ml-1m-50": [("ml-1m", 50, b, m) for b, m in PAIRS],
    "smoke": [("synthetic", 10, "sasrec", "none")],
}
SMALL = {"smoke": {"hidden_size": 16, "batch_size": 512}}  # checks the machinery, in seconds


def epoch_seconds(trainer: Any, epochs: int) -> float:
    """Wall seconds of `epochs` training epochs of `trainer`."""
    started = time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    return time.perf_counter() - started


def measure(
    base: TrialConfig, ks: Sequence[int], data_dir: str | None, epochs: int, rows: int | None = None
) -> list:
    """One record per K for the workload `base` (its seed is replaced by 1..K).

    `rows`: time a seeded random subset of that many training rows (a shorter epoch with the
    dataset's own length mix and item count), or every row when None.
    """
    data = load_data(base, data_dir)
    base = resolve_groups(base, data)
    device = torch.device(base.device)
    train = build_train_tensors(data, base.max_len, device)
    valid = build_eval_tensors(data, base.max_len, "valid", device)
    if rows is not None and rows < train.inputs.shape[0]:
        train = train.subset(random_rows(train.inputs.shape[0], rows, device))
    rows = train.inputs.shape[0]
    separate = {}
    torch.manual_seed(0)
    warm = build_model(base, data.num_items).to(device)
    Trainer(warm, base, train, valid, data.num_items).train_epoch()  # allocators and caches
    for seed in range(1, max(ks) + 1):
        torch.manual_seed(seed)
        model = build_model(base.replace(seed=seed), data.num_items).to(device)
        trainer = Trainer(model, base.replace(seed=seed), train, valid, data.num_items)
        separate[seed] = epoch_seconds(trainer, epochs)
    records = []
    for k in ks:
        configs = [base.replace(seed=seed) for seed in range(1, k + 1)]
        packed = epoch_seconds(packed_trainer(configs, train, valid, data.num_items), epochs)
        alone = sum(separate[seed] for seed in range(1, k + 1))
        records.append(
            {
                "dataset": base.dataset, "max_len": base.max_len, "backbone": base.backbone,
                "mechanism": base.mechanism, "device": base.device,
                "length_groups": base.length_groups, "threads": torch.get_num_threads(),
                "packed_seeds": k, "epochs": epochs, "rows": rows,
                "separate_seconds": alone, "packed_seconds": packed,
                "separate_sequences_per_second": k * rows * epochs / alone,
                "packed_sequences_per_second": k * rows * epochs / packed,
                "packed_speedup": alone / packed,
            }
        )  # fmt: skip
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awr.bench.packed_seeds")
    parser.add_argument("--device", default="cuda", help="cpu or cuda")
    parser.add_argument("--size", choices=tuple(WORKLOADS), default="full")
    parser.add_argument("--k", default="1,3,5", help="pack sizes, comma-separated")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="timed epochs per run")
    parser.add_argument("--rows", type=int, default=None, help="time this many training rows")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the records")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = sorted({int(part) for part in args.k.split(",")})
    records: list[dict[str, Any]] = []
    for dataset, max_len, backbone, mechanism in WORKLOADS[args.size]:
        base = TrialConfig(
            dataset=dataset, backbone=backbone, mechanism=mechanism, max_len=max_len,
            device=args.device, **SMALL.get(args.size, {}),
        )  # fmt: skip
        for record in measure(base, ks, args.data_dir, args.epochs, args.rows):
            records.append(record)
            write_json(args.out, records)
            print(
                f"{dataset} L{max_len} {backbone}/{mechanism} K={record['packed_seeds']}: "
                f"separate {record['separate_sequences_per_second']:.0f} seq/s, packed "
                f"{record['packed_sequences_per_second']:.0f} seq/s, "
                f"x{record['packed_speedup']:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
