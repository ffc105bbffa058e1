"""Benchmark harness: training throughput, evaluation time and peak memory per backbone x
mechanism x dataset x max_len, as a printed table and a JSON list of records.

    python -m awr.bench --quick
    python -m awr.bench --out bench.json        # the full table
    python -m awr.bench --datasets synthetic:ml-1m --max-lens 50,100,200 --device cuda
    python -m awr.bench gpu --out results/bench/gpu-<date>  # the prepared GPU run (8 min)

Datasets: a name or path for `awr.data.datasets.load_dataset` (with `--data-dir` or the
environment's AWR_DATA_DIR), or `synthetic:<name>`: seeded uniform random items with the shape
of the real dataset (same user count, item count and sequence-length distribution). The shapes
of ml-1m and beauty are built in (length quantiles of the real files, so no data is needed);
`synthetic:tiny` is a small shape for tests; any other name loads the real dataset and reuses its
exact sequence lengths.

Method, per record: the tensors are built once per (dataset, max_len); `torch.manual_seed(0)`,
`build_model`, a `Trainer`; `--warmup` untimed epochs, then `--epochs` timed `train_epoch()`
calls (median); then `--warmup` untimed and `--eval-passes` timed `evaluate()` passes over the
validation split (median). Timings are synchronised on CUDA. `--max-steps N` makes an epoch the
first N batches of the shuffled epoch (a seeded random subset of N * batch_size training rows,
negative sampling included); `--max-eval-batches N` evaluates a seeded random subset of
N * eval_batch_size users. Times are then scaled by full rows / timed rows to a full epoch or
pass, and the record's `scaled` is true. Throughputs (sequences/s, users/s) are measured rates.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` (reset before each record). On CPU the
peak resident set size of the whole process (interpreter, torch, data tensors included) during
the record: on Linux `VmHWM`, reset before each record through /proc/self/clear_refs; where that
is impossible `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the process's peak SO FAR, which never
goes down across records (the header says which method was used). tracemalloc does not see
torch's allocations and psutil has no peak RSS on Linux, so neither is used.

`--packed N` runs N independent trials' training epochs side by side in N spawned processes on
the same device (each with torch's default thread count) after a barrier, and reports their
aggregate sequences/s and its ratio to the single-trial rate (keys `packed_trials`,
`packed_sequences_per_second`, `packed_speedup`).

Record keys: RECORD_KEYS, plus `ratio_to_none` (train seconds / the `none` mechanism's at the
same backbone, dataset and max_len) when `none` was measured, plus the packed keys with
`--packed`.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import queue
import re
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from awr.config import (
    MECHANISMS,
    MECHANISMS_BY_BACKBONE,
    ConfigError,
    TrialConfig,
    check_device,
    from_pairs,
)
from awr.data.batches import (
    EvalTensors,
    TrainTensors,
    build_eval_tensors,
    build_train_tensors,
)
from awr.data.datasets import SequenceData, load_dataset, resolve_data_dir, resolve_source
from awr.data.errors import DataError
from awr.data.sources import SOURCES
from awr.eval.evaluate import evaluate
from awr.models.registry import build_model, count_parameters
from awr.train.trainer import Trainer

RECORD_KEYS = (
    "backbone",
    "mechanism",
    "dataset",
    "max_len",
    "hidden_size",
    "num_layers",
    "device",
    "length_groups",
    "num_params",
    "extra_params",
    "train_seconds_per_epoch",
    "sequences_per_second",
    "eval_seconds",
    "users_per_second",
    "peak_memory_mb",
    "torch_version",
    "epochs_timed",
    "threads",
    "scaled",
)
SYNTHETIC_PREFIX = "synthetic:"
DEFAULT_MAX_LEN = {"ml-1m": 200, "beauty": 50, "tiny": 20}
SUBSET_SEED = 0
PACKED_TIMEOUT_S = 3600.0

# Percentiles at which the built-in shapes give the sequence length (linear in between).
QUANTILE_POINTS = (0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.9, 100)


@dataclass(frozen=True)
class Shape:
    """A dataset's size: users, items and its sequence-length quantiles at QUANTILE_POINTS."""

    users: int
    items: int
    length_quantiles: tuple[float, ...]


# From the real files in the data dir (ML-1M, SASRec's Beauty).
SHAPES = {
    "ml-1m": Shape(
        6040,
        3416,
        (18, 20, 21, 23, 27, 37, 51, 70, 96, 126, 173, 253, 400, 556, 783, 906, 1341, 2277),
    ),
    "beauty": Shape(52204, 57289, (1, 2, 2, 3, 4, 4, 5, 5, 6, 6, 7, 9, 13, 17, 27, 37, 93, 293)),
    "tiny": Shape(1000, 300, (2, 3, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 22, 25, 28, 30, 32, 35)),
}

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


# ---------------------------------------------------------------------------------------------
# Data


def sample_lengths(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """`shape.users` lengths drawn by inverse-CDF interpolation of the shape's quantiles."""
    u = rng.uniform(0.0, 100.0, size=shape.users)
    lengths = np.rint(np.interp(u, QUANTILE_POINTS, shape.length_quantiles)).astype(np.int64)
    return np.clip(lengths, 1, shape.items - 1)


def random_sequences(
    label: str, lengths: np.ndarray, num_items: int, seed: int, source: str
) -> SequenceData:
    """Uniform random items 1..num_items (seeded) in sequences of the given lengths."""
    rng = np.random.default_rng(seed)
    items = rng.integers(1, num_items + 1, size=int(lengths.sum()), dtype=np.int64)
    items.flags.writeable = False
    sequences = np.split(items, np.cumsum(lengths)[:-1])
    return SequenceData(label, sequences, num_items, f"{source}:seed={seed}", source)


def synthetic_data(name: str, seed: int, data_dir: str | None) -> SequenceData:
    """`synthetic:<name>`: a built-in shape, or the real dataset's exact lengths, permuted."""
    rng = np.random.default_rng(seed)
    if name in SHAPES:
        shape = SHAPES[name]
        lengths, num_items = sample_lengths(shape, rng), shape.items
    else:
        real = load_dataset(name, data_dir)
        lengths = rng.permutation([len(s) for s in real.sequences]).astype(np.int64)
        num_items = real.num_items
    return random_sequences(SYNTHETIC_PREFIX + name, lengths, num_items, seed + 1, name)


def load_bench_data(spec: str, data_dir: str | None, seed: int) -> SequenceData:
    """A dataset spec of the command line: `synthetic:<name>`, a known name or a path."""
    if spec.startswith(SYNTHETIC_PREFIX):
        return synthetic_data(spec.removeprefix(SYNTHETIC_PREFIX), seed, data_dir)
    return load_dataset(spec, data_dir)


def default_max_len(spec: str) -> int:
    """200 for ml-1m, 50 for beauty (real or synthetic), else TrialConfig's default."""
    return DEFAULT_MAX_LEN.get(spec.removeprefix(SYNTHETIC_PREFIX), TrialConfig().max_len)


def random_rows(total: int, keep: int, device: torch.device) -> torch.Tensor:
    """A seeded random subset of `keep` of `total` row indices, in increasing order."""
    generator = torch.Generator().manual_seed(SUBSET_SEED)
    rows = torch.randperm(total, generator=generator)[:keep]
    return rows.sort().values.to(device)


def subset_train(tensors: TrainTensors, rows: torch.Tensor) -> TrainTensors:
    """The training rows `rows` (the seen keys stay whole, so negatives are sampled alike)."""
    return TrainTensors(
        inputs=tensors.inputs[rows],
        targets=tensors.targets[rows],
        user_index=tensors.user_index[rows],
        seen_keys=tensors.seen_keys,
        num_items=tensors.num_items,
    )


def subset_eval(tensors: EvalTensors, rows: torch.Tensor) -> EvalTensors:
    """The evaluated users `rows`, their flat histories regathered."""
    offsets = tensors.history_offsets
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    new_offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    within = torch.arange(int(new_offsets[-1]), device=rows.device)
    within -= torch.repeat_interleave(new_offsets[:-1], lengths)
    items = tensors.history_items[torch.repeat_interleave(starts, lengths) + within]
    return EvalTensors(
        inputs=tensors.inputs[rows],
        targets=tensors.targets[rows],
        user_index=tensors.user_index[rows],
        history_items=items,
        history_offsets=new_offsets,
    )


@dataclass
class Workload:
    """The tensors of one (dataset, max_len): full sizes and the timed (possibly subset) ones."""

    label: str
    num_items: int
    max_len: int
    train: TrainTensors
    valid: EvalTensors
    train_rows: int  # full training rows per epoch
    eval_users: int  # full evaluated users per pass

    @property
    def train_scale(self) -> float:
        return self.train_rows / self.train.inputs.shape[0]

    @property
    def eval_scale(self) -> float:
        return self.eval_users / self.valid.targets.shape[0]

    @property
    def scaled(self) -> bool:
        return self.train_scale > 1.0 or self.eval_scale > 1.0


@dataclass(frozen=True)
class Settings:
    """What every record shares: the base config and the timing options."""

    base: TrialConfig
    epochs: int
    warmup: int
    eval_passes: int
    max_steps: int | None
    max_eval_batches: int | None
    packed: int
    data_dir: str | None
    seed: int


def prepare_workload(data: SequenceData, label: str, max_len: int, settings: Settings) -> Workload:
    """Tensors built once on the device, cut to `--max-steps` / `--max-eval-batches` if set."""
    device = torch.device(settings.base.device)
    train = build_train_tensors(data, max_len, device)
    valid = build_eval_tensors(data, max_len, "valid", device)
    train_rows, eval_users = int(train.inputs.shape[0]), int(valid.targets.shape[0])
    if settings.max_steps is not None:
        keep = settings.max_steps * settings.base.batch_size
        if keep < train_rows:
            train = subset_train(train, random_rows(train_rows, keep, device))
    if settings.max_eval_batches is not None:
        keep = settings.max_eval_batches * settings.base.eval_batch_size
        if keep < eval_users:
            valid = subset_eval(valid, random_rows(eval_users, keep, device))
    return Workload(label, data.num_items, max_len, train, valid, train_rows, eval_users)


# ---------------------------------------------------------------------------------------------
# Timing and memory


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], Any], warmup: int, repeats: int, device: torch.device
) -> list[float]:
    """Seconds of each of `repeats` calls of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return seconds


def reset_peak_memory(device: torch.device) -> bool:
    """Reset the peak counter; False where the CPU peak cannot be reset (ru_maxrss is used)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: max allocated since the reset; CPU: peak RSS (VmHWM, else ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        status = Path("/proc/self/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated, reset per record"
    if reset_peak_memory(device):
        return "peak RSS of the process (VmHWM), reset per record via /proc/self/clear_refs"
    return "the process's peak RSS so far (VmHWM or ru_maxrss; not reset, never goes down)"


def free_memory(device: torch.device) -> None:
    """Collect garbage and hand freed memory back (CUDA cache; glibc heap via malloc_trim), so
    that a record's peak does not start from what earlier records left allocated."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass  # not glibc


# ---------------------------------------------------------------------------------------------
# One record


def make_config(
    settings: Settings, workload: Workload, backbone: str, mechanism: str
) -> TrialConfig:
    return settings.base.replace(
        dataset=workload.label, backbone=backbone, mechanism=mechanism, max_len=workload.max_len
    )


def none_params(config: TrialConfig, num_items: int) -> int:
    """Parameters of the same backbone without a mechanism."""
    torch.manual_seed(0)
    return count_parameters(build_model(config.replace(mechanism="none"), num_items))


def bench_record(settings: Settings, workload: Workload, backbone: str, mechanism: str) -> dict:
    """Train and evaluation timings, parameters and peak memory of one configuration."""
    config = make_config(settings, workload, backbone, mechanism)
    device = torch.device(config.device)
    free_memory(device)
    reset_peak_memory(device)
    torch.manual_seed(0)
    model = build_model(config, workload.num_items).to(device)
    trainer = Trainer(model, config, workload.train, workload.valid, workload.num_items)
    train_times = time_calls(trainer.train_epoch, settings.warmup, settings.epochs, device)
    eval_times = time_calls(
        lambda: evaluate(model, workload.valid, config.eval_batch_size),
        settings.warmup,
        settings.eval_passes,
        device,
    )
    train_seconds = statistics.median(train_times) * workload.train_scale
    eval_seconds = statistics.median(eval_times) * workload.eval_scale
    num_params = count_parameters(model)
    return {
        "backbone": backbone,
        "mechanism": mechanism,
        "dataset": workload.label,
        "max_len": workload.max_len,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "device": str(device),
        "length_groups": trainer.length_groups,
        "num_params": num_params,
        "extra_params": num_params - none_params(config, workload.num_items),
        "train_seconds_per_epoch": train_seconds,
        "sequences_per_second": workload.train_rows / train_seconds,
        "eval_seconds": eval_seconds,
        "users_per_second": workload.eval_users / eval_seconds,
        "peak_memory_mb": peak_memory_mb(device),
        "torch_version": torch.__version__,
        "epochs_timed": settings.epochs,
        "threads": torch.get_num_threads(),
        "scaled": workload.scaled,
    }


def add_ratios(records: list[dict]) -> None:
    """ratio_to_none on every record whose (backbone, dataset, max_len) has a `none` record."""
    base = {
        (r["backbone"], r["dataset"], r["max_len"]): r["train_seconds_per_epoch"]
        for r in records
        if r["mechanism"] == "none"
    }
    for record in records:
        key = (record["backbone"], record["dataset"], record["max_len"])
        if key in base:
            record["ratio_to_none"] = record["train_seconds_per_epoch"] / base[key]


# ---------------------------------------------------------------------------------------------
# Packed trials


@dataclass(frozen=True)
class PackedJob:
    settings: Settings
    dataset: str
    max_len: int
    backbone: str
    mechanism: str


def packed_trial(job: PackedJob, index: int, barrier: Any) -> tuple[int, float]:
    """One trial's timed epochs after the barrier: (sequences trained, seconds)."""
    settings = job.settings
    data = load_bench_data(job.dataset, settings.data_dir, settings.seed)
    workload = prepare_workload(data, job.dataset, job.max_len, settings)
    config = make_config(settings, workload, job.backbone, job.mechanism)
    config = config.replace(seed=config.seed + index)
    device = torch.device(config.device)
    torch.manual_seed(index)
    model = build_model(config, workload.num_items).to(device)
    trainer = Trainer(model, config, workload.train, workload.valid, workload.num_items)
    for _ in range(settings.warmup):
        trainer.train_epoch()
    synchronize(device)
    barrier.wait(timeout=PACKED_TIMEOUT_S)
    started = time.perf_counter()
    for _ in range(settings.epochs):
        trainer.train_epoch()
    synchronize(device)
    return int(workload.train.inputs.shape[0]) * settings.epochs, time.perf_counter() - started


def packed_worker(job: PackedJob, index: int, barrier: Any, results: Any) -> None:
    """Process entry point: puts ("ok", sequences, seconds) or ("error", traceback)."""
    try:
        results.put(("ok", *packed_trial(job, index, barrier)))
    except BaseException:
        barrier.abort()
        results.put(("error", traceback.format_exc()))


def collect(results: Any, processes: list[Any], count: int, barrier: Any) -> list[tuple]:
    """`count` results from the queue; a worker's error or death aborts the whole run."""
    collected: list[tuple] = []
    while len(collected) < count:
        try:
            item = results.get(timeout=1.0)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                barrier.abort()
                raise RuntimeError("a packed trial process died") from None
            continue
        if item[0] == "error":
            raise RuntimeError(f"a packed trial failed:\n{item[1]}")
        collected.append(item)
    return collected


def run_packed(job: PackedJob, count: int) -> float:
    """Aggregate training sequences/s of `count` trials run side by side in spawned processes."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    processes = [
        ctx.Process(target=packed_worker, args=(job, index, barrier, results))
        for index in range(count)
    ]
    for process in processes:
        process.start()
    try:
        collected = collect(results, processes, count, barrier)
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
    return sum(item[1] for item in collected) / max(item[2] for item in collected)


def add_packed(record: dict, job: PackedJob, count: int) -> None:
    aggregate = run_packed(job, count)
    record["packed_trials"] = count
    record["packed_sequences_per_second"] = aggregate
    record["packed_speedup"] = aggregate / record["sequences_per_second"]


# ---------------------------------------------------------------------------------------------
# Output


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, str]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "device": f"{device} ({device_name(device)})",
        "cpu_count": f"{os.cpu_count()} (usable: {affinity or os.cpu_count()})",
        "torch": torch.__version__,
        "threads": f"{torch.get_num_threads()} (inter-op {torch.get_num_interop_threads()})",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "peak_memory": memory_method(device),
    }


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("backbone", "backbone", "{}"),
    ("mechanism", "mechanism", "{}"),
    ("dataset", "dataset", "{}"),
    ("L", "max_len", "{}"),
    ("groups", "length_groups", "{}"),
    ("params", "num_params", "{:,}"),
    ("extra", "extra_params", "{:,}"),
    ("s/epoch", "train_seconds_per_epoch", "{:.2f}"),
    ("seq/s", "sequences_per_second", "{:.0f}"),
    ("x none", "ratio_to_none", "{:.2f}"),
    ("eval s", "eval_seconds", "{:.2f}"),
    ("users/s", "users_per_second", "{:.0f}"),
    ("peak MB", "peak_memory_mb", "{:.0f}"),
    ("packed seq/s", "packed_sequences_per_second", "{:.0f}"),
    ("packed x", "packed_speedup", "{:.2f}"),
    ("scaled", "scaled", "{}"),
)


def format_table(records: Sequence[dict]) -> str:
    """A fixed-width text table; columns no record has are left out."""
    columns = [c for c in COLUMNS if any(c[1] in r for r in records)]
    rows = [[c[0] for c in columns]]
    for record in records:
        rows.append([fmt.format(record[key]) if key in record else "-" for _, key, fmt in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(path: Path, records: list[dict]) -> None:
    """Write the records atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Command line


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
    add("--device", default="cpu", help="cpu, cuda or cuda:N")
    add("--hidden-size", type=int, default=64)
    add("--num-layers", type=int, default=1)
    add("--num-heads", type=int, default=2)
    add("--batch-size", type=int, default=256)
    add("--eval-batch-size", type=int, default=TrialConfig().eval_batch_size)
    add(
        "--length-groups",
        type=int,
        default=TrialConfig().length_groups,
        help="training sub-batches by length (TrialConfig.length_groups; 0 = auto)",
    )
    add("--epochs", type=int, default=3, help="timed training epochs (median)")
    add("--warmup", type=int, default=1, help="untimed epochs / eval passes first")
    add("--eval-passes", type=int, default=3, help="timed evaluation passes (median)")
    add("--max-steps", type=int, default=None, help="batches per timed epoch; scaled to a full one")
    add("--max-eval-batches", type=int, default=None, help="eval batches per pass; scaled")
    add("--packed", type=int, default=0, help="also run N trials side by side in N processes")
    add("--data-dir", default=None, help="default: $AWR_DATA_DIR, else ~/.cache/awr/data")
    add("--seed", type=int, default=0, help="seed of the synthetic data")
    add("--set", action="append", default=[], metavar="KEY=VALUE", help="other TrialConfig fields")
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
    check_device(from_pairs(args.set).replace(device=args.device).device)  # ConfigError: 1 line
    for spec in args.datasets:
        check_dataset(spec.removeprefix(SYNTHETIC_PREFIX), args.data_dir)


def check_dataset(name: str, data_dir: str | None) -> None:
    """DataError now for a dataset that is neither a built-in shape, a named dataset (loaded,
    or downloaded, when its turn comes) nor an existing file."""
    if name not in SHAPES and name not in SOURCES:
        resolve_source(name, resolve_data_dir(data_dir))


def make_settings(args: argparse.Namespace) -> Settings:
    base = from_pairs(args.set).replace(
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        length_groups=args.length_groups,
        device=args.device,
    )
    return Settings(
        base=base,
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


def print_header(settings: Settings, args: argparse.Namespace) -> None:
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
        f"  timing       warmup {args.warmup}, epochs {args.epochs} (median), eval passes"
        f" {args.eval_passes} (median), max steps {args.max_steps},"
        f" max eval batches {args.max_eval_batches}, packed {args.packed}"
    )
    print(flush=True)


def print_progress(record: dict) -> None:
    print(
        f"  {record['backbone']}/{record['mechanism']}: "
        f"{record['train_seconds_per_epoch']:.2f} s/epoch, "
        f"{record['sequences_per_second']:.0f} seq/s, eval {record['eval_seconds']:.2f} s, "
        f"peak {record['peak_memory_mb']:.0f} MB" + (" (scaled)" if record["scaled"] else ""),
        flush=True,
    )


def run_dataset(spec: str, args: argparse.Namespace, settings: Settings, out: list[dict]) -> None:
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
                    add_packed(record, job, settings.packed)
                out.append(record)
                add_ratios(out)
                write_json(args.out, out)
                print_progress(record)
        del workload
        free_memory(torch.device(settings.base.device))


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table, write the JSON; returns the records."""
    started = time.perf_counter()
    args = parse_args(argv)
    settings = make_settings(args)
    print_header(settings, args)
    records: list[dict] = []
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["gpu"]:  # the prepared GPU run: awr/benchmarks/gpu_run.py
        from awr.benchmarks.gpu_run import main as gpu_main

        sys.exit(gpu_main(sys.argv[2:]))
    sys.exit(cli())
