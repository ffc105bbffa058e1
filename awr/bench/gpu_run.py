"""The prepared GPU run: `python -m awr.bench gpu --out results/bench/gpu-<date>`.

Runs the plan of gpu_plan.py step by step, each as a subprocess in its own process group with
its own deadline, and writes to the folder: `gpu_run.json` (machine, plan, every step's
status, seconds, GPU utilisation and figures; rewritten after each step), `gpu_run.log` (every
command's output), `gpu_util.csv` (nvidia-smi samples) and each step's own files. On CPU
(`--device cpu`, size `smoke`) the same steps run on tiny shapes: `--budget-s 60` checks the
machinery. Ctrl-C stops the running step the same way as its deadline does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from awr.bench.gpu_plan import (
    FULL_BUDGET_S,
    SIZES,
    STEP_NAMES,
    UNAVAILABLE,
    PlanError,
    Step,
    build_plan,
    deadline,
)
from awr.files import write_text_atomic

ROOT = Path(__file__).resolve().parents[2]  # the checkout: orchestrate.py and tests/
MIN_STEP_S = 3.0  # a step that would get less is skipped
POLL_S = 0.25
SAMPLE_S = 1.0
NVIDIA_SMI = [
    "nvidia-smi",
    "--query-gpu=utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
]


class GpuSampler(threading.Thread):
    """nvidia-smi every SAMPLE_S seconds: (unix time, utilisation %, memory MiB) of GPU 0."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []
        self.error: str | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                line = subprocess.run(NVIDIA_SMI, capture_output=True, text=True, timeout=10)
                util, memory = line.stdout.splitlines()[0].split(",")[:2]
                self.samples.append((time.time(), float(util), float(memory)))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError) as error:
                self.error = f"nvidia-smi unavailable: {error}"
                return
            self.stopped.wait(SAMPLE_S)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Mean and max utilisation and max memory of the samples in [start, end]."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"samples": 0, "note": self.error or "no samples"}
        utils = [s[1] for s in inside]
        return {
            "samples": len(inside),
            "util_mean_pct": round(sum(utils) / len(utils), 1),
            "util_max_pct": max(utils),
            "memory_max_mib": max(s[2] for s in inside),
        }

    def write_csv(self, path: Path) -> None:
        rows = ["unix_time,utilization_gpu_pct,memory_used_mib"]
        rows += [f"{t:.3f},{u:g},{m:g}" for t, u, m in self.samples]
        path.write_text("\n".join(rows) + "\n")


def stop_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_step(step: Step, until: float, log: Path) -> dict[str, Any]:
    """Run one step until it exits or `until` (time.monotonic): SIGINT its grace before (at
    most a quarter of its time), SIGKILL at `until`. Returns its record (status ok, failed,
    stopped, killed, unavailable)."""
    started_wall, started = time.time(), time.monotonic()
    grace = min(step.grace_s, 0.25 * (until - started))
    with log.open("a") as handle:
        handle.write(f"\n=== {step.name}: {time.strftime('%H:%M:%S')}, {until - started:.0f} s\n")
        handle.write("$ " + " ".join(step.command) + "\n")
        handle.flush()
        process = subprocess.Popen(
            step.command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        status = None
        try:
            while process.poll() is None:
                now = time.monotonic()
                if now >= until:
                    stop_group(process, signal.SIGKILL)
                    status = "killed"
                    process.wait()
                elif status is None and now >= until - grace:
                    stop_group(process, signal.SIGINT)
                    status = "stopped"
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            stop_group(process, signal.SIGINT)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                stop_group(process, signal.SIGKILL)
            raise
        finally:
            stop_group(process, signal.SIGKILL)  # whatever the step left in its group
    code = process.returncode
    if status is None:
        status = "ok" if code == 0 else "unavailable" if code == UNAVAILABLE else "failed"
    return {
        "name": step.name,
        "status": status,
        "returncode": code,
        "seconds": round(time.monotonic() - started, 2),
        "allowed_s": round(until - started, 2),
        "budget_s": round(step.budget_s, 2),
        "started_unix": round(started_wall, 3),
        "command": list(step.command),
        "outputs": list(step.outputs),
    }


def figures(out: Path, step: Step) -> Any:
    """The step's own figures from its JSON output (harness and packing records, packed
    seeds), trimmed to what the summary needs."""
    keys = ("backbone", "mechanism", "dataset", "max_len", "train_seconds_per_epoch",
            "sequences_per_second", "eval_seconds", "peak_memory_mb", "length_groups",
            "packed_trials", "packed_sequences_per_second", "packed_speedup")  # fmt: skip
    found = []
    for name in step.outputs:
        path = out / name
        if path.suffix != ".json" or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        records = data if isinstance(data, list) else [data]
        found += [{k: r[k] for k in keys if k in r} if isinstance(r, dict) else r for r in records]
    return found


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here and reaches every step while the run lasts. A
    process started in the background (`nohup ... &`, a CI job) inherits SIGINT ignored, and an
    ignored signal stays ignored across exec: each step would then sleep through its stop and be
    killed at its deadline instead of writing what it has."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def execute(
    plan: Sequence[Step],
    out: Path,
    budget_s: float,
    header: dict[str, Any],
    min_step_s: float = MIN_STEP_S,
) -> dict:
    """Run the plan within `budget_s` seconds; returns (and keeps writing) gpu_run.json. A
    step that would get less than `min_step_s` is skipped."""
    out.mkdir(parents=True, exist_ok=True)
    with interruptible():
        return run_plan(plan, out, budget_s, header, min_step_s)


def run_plan(
    plan: Sequence[Step], out: Path, budget_s: float, header: dict[str, Any], min_step_s: float
) -> dict:
    log, summary_path = out / "gpu_run.log", out / "gpu_run.json"
    sampler = GpuSampler()
    sampler.start()
    started = time.monotonic()
    run_deadline = started + budget_s
    summary: dict[str, Any] = {**header, "budget_s": budget_s, "steps": [], "finished": False}
    write_json(summary_path, summary)
    try:
        for step in plan:
            now = time.monotonic()
            until = deadline(step, now, run_deadline)
            if until - now < min_step_s:
                record: dict[str, Any] = {"name": step.name, "status": "skipped", "seconds": 0}
            else:
                record = run_step(step, until, log)
                end = record["started_unix"] + record["seconds"]
                record["gpu"] = sampler.window(record["started_unix"], end)
                record["figures"] = figures(out, step)
            summary["steps"].append(record)
            summary["elapsed_s"] = round(time.monotonic() - started, 2)
            write_json(summary_path, summary)
            print(
                f"[{summary['elapsed_s']:6.1f}s of {budget_s:.0f}s] {step.name}: "
                f"{record['status']} in {record['seconds']:.1f} s",
                flush=True,
            )
        summary["finished"] = True
    except KeyboardInterrupt:
        summary["interrupted"] = True
        print("interrupted: the folder holds what ran so far", flush=True)
    finally:
        sampler.stopped.set()
        sampler.write_csv(out / "gpu_util.csv")
        summary["gpu_sampler"] = sampler.error or f"{len(sampler.samples)} samples"
        summary["elapsed_s"] = round(time.monotonic() - started, 2)
        write_json(summary_path, summary)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m awr.bench gpu", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--out", type=Path, required=True, help="folder for the JSON, the log and step outputs")
    add("--device", default="cuda", help="cuda (default) or cpu for the smoke run")
    add("--budget-s", type=float, default=FULL_BUDGET_S, help="seconds for the whole run")
    add("--size", choices=SIZES, default=None, help="default: full on CUDA, smoke on CPU")
    add("--steps", default=",".join(STEP_NAMES), help=f"subset of {','.join(STEP_NAMES)}")
    add("--data-dir", default=None, help="default: $AWR_DATA_DIR, else ./data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps = [name.strip() for name in args.steps.split(",") if name.strip()]
    try:
        plan = build_plan(
            args.out.resolve(), args.device, args.budget_s, args.size, args.data_dir, steps
        )
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    header = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": args.device,
        "size": args.size or ("full" if args.device.startswith("cuda") else "smoke"),
        "machine": machine(),
        "plan": [{"name": s.name, "budget_s": round(s.budget_s, 2)} for s in plan],
    }
    summary = execute(plan, args.out.resolve(), args.budget_s, header)
    return 130 if summary.get("interrupted") else 0
