"""Measuring: wall-clock timing, peak memory, the machine, and one record measured.

Method, per record: `torch.manual_seed(0)`, `build_model`, a `Trainer`; `warmup` untimed epochs,
then `epochs` timed `train_epoch()` calls (median); then `warmup` untimed and `eval_passes` timed
`evaluate()` passes over the validation split (median). Timings are synchronised on CUDA. On a
subset workload (awr/bench/workload.py) the medians are scaled to a full epoch or pass;
throughputs (sequences/s, users/s) are then measured rates.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` (reset before each record). On CPU the
peak resident set size of the whole process (interpreter, torch, data tensors included) during
the record: on Linux `VmHWM`, reset before each record through /proc/self/clear_refs; where that
is impossible `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the process's peak SO FAR, which never
goes down across records (the header says which method was used). tracemalloc does not see
torch's allocations and psutil has no peak RSS on Linux, so neither is used.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from awr.bench.record import BenchRecord
from awr.bench.workload import Settings, Workload
from awr.config import TrialConfig
from awr.eval.evaluate import evaluate
from awr.models.registry import build_model, count_parameters
from awr.train.trainer import Trainer


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on CPU."""
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
    """CUDA: max allocated since the reset; CPU: peak RSS (VmHWM, else ru_maxrss), in MiB."""
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
    """How `peak_memory_mb` measures on this device, for the header."""
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


def device_name(device: torch.device) -> str:
    """The GPU's name, else the CPU's model name."""
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
    """What the figures were measured on: device, cores, versions, threads, memory method."""
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


def none_params(config: TrialConfig, num_items: int) -> int:
    """Parameters of the same backbone without a mechanism."""
    torch.manual_seed(0)
    return count_parameters(build_model(config.replace(mechanism="none"), num_items))


def bench_record(
    settings: Settings, workload: Workload, backbone: str, mechanism: str
) -> BenchRecord:
    """Train and evaluation timings, parameters and peak memory of one configuration."""
    config = settings.trial_config(workload, backbone, mechanism)
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
    return BenchRecord(
        backbone=backbone,
        mechanism=mechanism,
        dataset=workload.label,
        max_len=workload.max_len,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        device=str(device),
        length_groups=trainer.length_groups,
        num_params=num_params,
        extra_params=num_params - none_params(config, workload.num_items),
        train_seconds_per_epoch=train_seconds,
        sequences_per_second=workload.train_rows / train_seconds,
        eval_seconds=eval_seconds,
        users_per_second=workload.eval_users / eval_seconds,
        peak_memory_mb=peak_memory_mb(device),
        torch_version=torch.__version__,
        epochs_timed=settings.epochs,
        threads=torch.get_num_threads(),
        scaled=workload.scaled,
    )
