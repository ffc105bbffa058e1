"""Packed trials (`python -m awr.bench --packed N`): N independent trials' training epochs side
by side on one device, as Ray packs trials onto a GPU.

Each trial runs in its own spawned process (torch's default thread count), builds its own
workload and model (seed + its index), runs its untimed warm-up epochs, waits at a barrier, then
times its epochs. The aggregate rate is all trials' sequences over the slowest trial's seconds;
`packed_speedup` is its ratio to the single-trial rate of the same record. A worker's error or
death aborts the whole run with its traceback.
"""

from __future__ import annotations

import dataclasses
import queue
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch
import torch.multiprocessing as mp

from awr.bench.measure import synchronize
from awr.bench.record import BenchRecord
from awr.bench.workload import Settings, load_bench_data, prepare_workload
from awr.models.registry import build_model
from awr.train.trainer import Trainer

PACKED_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class PackedJob:
    """One record's configuration, as each trial process rebuilds it."""

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
    config = settings.trial_config(workload, job.backbone, job.mechanism)
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


def add_packed(record: BenchRecord, job: PackedJob, count: int) -> BenchRecord:
    """The record with the packed figures of `count` trials of `job`."""
    aggregate = run_packed(job, count)
    return dataclasses.replace(
        record,
        packed_trials=count,
        packed_sequences_per_second=aggregate,
        packed_speedup=aggregate / record.sequences_per_second,
    )
