"""Benchmark harness: training throughput, evaluation time and peak memory per backbone x
mechanism x dataset x max_len, as a printed table and a JSON list of records.

`python -m awr.bench [options]`: the tensors are built once per (dataset, max_len)
(awr/bench/workload.py), then every backbone x mechanism is measured on them
(awr/bench/measure.py) and its record (awr/bench/record.py) printed and written to `--out` at
once, so an interrupted run keeps what it measured. Model and training settings are TrialConfig
fields, given as `--set key=value` (default: TrialConfig's, hidden 64, 1 layer, 2 heads, batch
256); `--device` picks the device (default: `--set device=...`, else cpu).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from awr.bench.measure import bench_record, free_memory, machine_info
from awr.bench.packed import PackedJob, add_packed
from awr.bench.record import add_ratios, format_table, write_json
from awr.bench.workload import Settings, default_max_len, load_bench_data, prepare_workload
from awr.config import (
    MECHANISMS,
    MECHANISMS_BY_BACKBONE,
    ConfigError,
    TrialConfig,
    check_device,
    from_pairs,
)
from awr.data.datasets import resolve_data_dir, resolve_source
from awr.data.errors import DataError
from awr.data.sources import SOURCES
from awr.data.synthetic import SHAPES, SYNTHETIC_PREFIX

QUICK_DEFAULTS: dict[str, Any] = {
    "datasets": ["synthetic:ml-1m", "synthetic:beauty"],
    "backbones": ["sasrec", "stosa"],
    "mechanisms": ["none", "simple"],
    "max_steps": 2,
    "max_eval_batches": 1,
    "epochs": 2,
    "warmup": 1,
    "eval_passes": 2,
}


def csv_list(text: str) -> list[str]:
    """Comma-separated names, blanks and repeats dropped, order kept."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def int_list(text: str) -> list[int]:
    return [int(part) for part in csv_list(text)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m awr.bench", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--backbones", type=csv_list, default=["sasrec", "stosa"])
    add("--mechanisms", type=csv_list, default=None, help="default: every valid one per backbone")
    add(
        "--datasets",
        type=csv_list,
        default=["ml-1m", "beauty"],
        help="names, paths or synthetic:NAME",
    )
    add("--max-lens", type=int_list, default=None, help="default: 200 for ml-1m, 50 for beauty")
    add("--device", default=None, help="cpu, cuda or cuda:N (default: --set device=..., else cpu)")
    add("--epochs", type=int, default=3, help="timed training epochs (median)")
    add("--warmup", type=int, default=1, help="untimed epochs / eval passes first")
    add("--eval-passes", type=int, default=3, help="timed evaluation passes (median)")
    add("--max-steps", type=int, default=None, help="batches per timed epoch; scaled to a full one")
    add("--max-eval-batches", type=int, default=None, help="eval batches per pass; scaled")
    add("--packed", type=int, default=0, help="also run N trials side by side in N processes")
    add("--data-dir", default=None, help="default: $AWR_DATA_DIR, else ~/.cache/awr/data")
    add("--seed", type=int, default=0, help="seed of the synthetic data")
    add(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TrialConfig field (hidden_size, num_layers, num_heads, batch_size,"
        " eval_batch_size, length_groups, ...); repeatable",
    )
    add("--out", type=Path, default=Path("bench.json"))
    add("--quick", action="store_true", help="small preset: minutes on a CPU")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Arguments; `--quick` changes the defaults, explicit options still win."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        parser.set_defaults(**QUICK_DEFAULTS)
        args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    unknown = [b for b in args.backbones if b not in MECHANISMS_BY_BACKBONE]
    if unknown:
        parser.error(f"unknown backbones {unknown}; valid: {', '.join(MECHANISMS_BY_BACKBONE)}")
    unknown = [m for m in args.mechanisms or [] if m not in MECHANISMS]
    if unknown:
        parser.error(f"unknown mechanisms {unknown}; valid: {', '.join(MECHANISMS)}")
    for name in ("epochs", "eval_passes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("max_steps", "max_eval_batches"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.packed < 0:
        parser.error("--warmup and --packed must be >= 0")
    check_device(base_config(args).device)  # a bad key, value or device: ConfigError, 1 line
    for spec in args.datasets:
        check_dataset(spec.removeprefix(SYNTHETIC_PREFIX), args.data_dir)


def check_dataset(name: str, data_dir: str | None) -> None:
    """DataError now for a dataset that is neither a built-in shape, a named dataset (loaded,
    or downloaded, when its turn comes) nor an existing file."""
    if name not in SHAPES and name not in SOURCES:
        resolve_source(name, resolve_data_dir(data_dir))


def base_config(args: argparse.Namespace) -> TrialConfig:
    """TrialConfig with the `--set` fields, on `--device` where given."""
    base = from_pairs(args.set)
    return base if args.device is None else base.replace(device=args.device)


def make_settings(args: argparse.Namespace) -> Settings:
    return Settings(
        base=base_config(args),
        epochs=args.epochs,
        warmup=args.warmup,
        eval_passes=args.eval_passes,
        max_steps=args.max_steps,
        max_eval_batches=args.max_eval_batches,
        packed=args.packed,
        data_dir=args.data_dir,
        seed=args.seed,
    )


def mechanisms_for(backbone: str, requested: list[str] | None) -> list[str]:
    """The requested mechanisms that fit the backbone (all of its own by default)."""
    allowed = MECHANISMS_BY_BACKBONE[backbone]
    return list(allowed) if requested is None else [m for m in requested if m in allowed]


def print_header(settings: Settings) -> None:
    print("awr benchmark")
    for key, value in machine_info(torch.device(settings.base.device)).items():
        print(f"  {key:12s} {value}")
    base = settings.base
    print(
        f"  model        hidden {base.hidden_size}, layers {base.num_layers}, heads"
        f" {base.num_heads}, batch {base.batch_size}, eval batch {base.eval_batch_size},"
        f" length groups {base.length_groups or 'auto'}"
    )
    print(
        f"  timing       warmup {settings.warmup}, epochs {settings.epochs} (median), eval"
        f" passes {settings.eval_passes} (median), max steps {settings.max_steps},"
        f" max eval batches {settings.max_eval_batches}, packed {settings.packed}"
    )
    print(flush=True)


def print_progress(record: dict[str, Any]) -> None:
    print(
        f"  {record['backbone']}/{record['mechanism']}: "
        f"{record['train_seconds_per_epoch']:.2f} s/epoch, "
        f"{record['sequences_per_second']:.0f} seq/s, eval {record['eval_seconds']:.2f} s, "
        f"peak {record['peak_memory_mb']:.0f} MB" + (" (scaled)" if record["scaled"] else ""),
        flush=True,
    )


def run_dataset(
    spec: str, args: argparse.Namespace, settings: Settings, out: list[dict[str, Any]]
) -> None:
    """Every (max_len, backbone, mechanism) record of one dataset, appended to `out`."""
    data = load_bench_data(spec, settings.data_dir, settings.seed)
    for max_len in args.max_lens or [default_max_len(spec)]:
        workload = prepare_workload(data, spec, max_len, settings)
        print(
            f"{spec} L={max_len}: {workload.train_rows} training rows"
            f" (timed {workload.train.inputs.shape[0]}), {workload.eval_users} eval users"
            f" (timed {workload.valid.targets.shape[0]}), {workload.num_items} items",
            flush=True,
        )
        for backbone in args.backbones:
            for mechanism in mechanisms_for(backbone, args.mechanisms):
                record = bench_record(settings, workload, backbone, mechanism)
                if settings.packed:
                    job = PackedJob(settings, spec, max_len, backbone, mechanism)
                    record = add_packed(record, job, settings.packed)
                out.append(record.to_json())
                add_ratios(out)
                write_json(args.out, out)
                print_progress(out[-1])
        del workload
        free_memory(torch.device(settings.base.device))


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark, print the table, write the JSON; returns the records (JSON objects)."""
    started = time.perf_counter()
    args = parse_args(argv)
    settings = make_settings(args)
    print_header(settings)
    records: list[dict[str, Any]] = []
    for spec in args.datasets:
        run_dataset(spec, args, settings, records)
    add_ratios(records)
    write_json(args.out, records)
    print()
    print(format_table(records))
    print(f"\n{len(records)} records -> {args.out}  ({time.perf_counter() - started:.1f}s)")
    return records


def cli(argv: Sequence[str] | None = None) -> int:
    """`python -m awr.bench`: a bad option, key, device or dataset is one `error: ...` line."""
    try:
        main(argv)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
