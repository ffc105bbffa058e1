"""The plan of the prepared GPU run: its steps, their commands and their time budgets.

Each step is one command (a subprocess) with a share of the run's budget. At the full budget
(FULL_BUDGET_S, 8 minutes) the shares are SHARES_S; another `--budget-s` scales them all. The
last step (the sweep) gets whatever the run has left when it starts, so time that earlier
steps did not use goes to it. A step is asked to stop (SIGINT, as a terminal's Ctrl-C) its
`grace_s` before its deadline and killed at the deadline.

Sizes: `full` (the default on CUDA) measures the real datasets; `smoke` (the default on CPU)
runs the same steps on tiny synthetic shapes, to check the machinery in a minute.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from awr.config import TrialConfig
from awr.errors import AwrError
from awr.sweep import Budget, Cell, Sweep

FULL_BUDGET_S = 480.0
PACKED_TRIALS = (2, 4, 8)  # 1 is the harness record itself
PACKED_SEEDS = (1, 3, 5)
SHARES_S = {
    "tests": 75.0,
    "harness": 150.0,
    "packing-2": 25.0,
    "packing-4": 30.0,
    "packing-8": 40.0,
    "packed-seeds": 45.0,
    "sweep": 115.0,  # at least; it also gets what the others leave
}
STEP_NAMES = tuple(SHARES_S)
SIZES = ("full", "smoke")
SWEEPS = {"full": "fixed_ml1m", "smoke": "awr.bench.gpu_plan:smoke_sweep"}
UNAVAILABLE = 3  # exit code of a step that cannot run on this machine (recorded, not failed)


@dataclass(frozen=True)
class Step:
    """One command of the run; `outputs` are the files it writes (relative to the folder)."""

    name: str
    command: tuple[str, ...]
    budget_s: float
    grace_s: float  # at most; a quarter of the time the step gets where that is less
    outputs: tuple[str, ...] = ()
    takes_rest: bool = False  # runs until the run's own deadline


def grace(name: str) -> float:
    """At most this many seconds between the stop request and the kill (a quarter of the
    step's time where that is less): a sweep needs time to stop Ray."""
    return 45.0 if name == "sweep" else 10.0


def bench_command(python: str, device: str, size: str, data_dir: str | None) -> list[str]:
    """The harness command every harness and packing step starts from."""
    command = [python, "-m", "awr.bench", "--device", device]
    if size == "smoke":
        command += [
            "--datasets", "synthetic:tiny", "--backbones", "sasrec", "--mechanisms", "none",
            "--max-steps", "1", "--max-eval-batches", "1", "--epochs", "1", "--warmup", "0",
            "--eval-passes", "1", "--set", "batch_size=64",
        ]  # fmt: skip
    if data_dir:
        command += ["--data-dir", data_dir]
    return command


def step_commands(
    out: Path, device: str, size: str, data_dir: str | None, python: str = sys.executable
) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name -> (command, output files) of every step."""
    bench = bench_command(python, device, size, data_dir)
    full = size == "full"
    commands: dict[str, tuple[list[str], tuple[str, ...]]] = {}
    junit = "pytest-gpu.xml"
    commands["tests"] = (
        [python, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py", "-p", "no:cacheprovider",
         "--junitxml", str(out / junit)],
        (junit,),
    )  # fmt: skip
    harness = ["--datasets", "ml-1m,beauty", "--max-steps", "48", "--max-eval-batches", "40",
               "--epochs", "2", "--warmup", "1", "--eval-passes", "2"]  # fmt: skip
    commands["harness"] = (
        bench + (harness if full else []) + ["--out", str(out / "harness.json")],
        ("harness.json",),
    )
    packing = ["--datasets", "ml-1m", "--backbones", "sasrec", "--mechanisms", "none",
               "--max-steps", "24", "--epochs", "3", "--warmup", "1",
               "--eval-passes", "1"]  # fmt: skip
    for count in PACKED_TRIALS:
        name = f"packing-{count}.json"
        commands[f"packing-{count}"] = (
            bench + (packing if full else []) + ["--packed", str(count), "--out", str(out / name)],
            (name,),
        )
    seeds = [python, "-m", "awr.bench.packed_seeds", "--device", device, "--size", size,
             "--k", ",".join(map(str, PACKED_SEEDS)),
             "--out", str(out / "packed-seeds.json")]  # fmt: skip
    seeds += ["--data-dir", data_dir] if data_dir else []
    commands["packed-seeds"] = (seeds, ("packed-seeds.json",))
    sweep_out = out / "sweep"
    sweep = [python, "orchestrate.py", "--sweep", SWEEPS[size], "--out", str(sweep_out)]
    if sweep_out.is_dir() and any(sweep_out.glob("*.sweep.json")):
        sweep.append("--resume")  # a rerun goes on where the last one stopped
    commands["sweep"] = (sweep + (["--data-dir", data_dir] if data_dir else []), ("sweep",))
    return commands


class PlanError(AwrError, ValueError):
    """A bad option of the GPU run (`--budget-s`, `--steps`, `--size`)."""


def build_plan(
    out: Path,
    device: str = "cuda",
    budget_s: float = FULL_BUDGET_S,
    size: str | None = None,
    data_dir: str | None = None,
    steps: Sequence[str] = STEP_NAMES,
    python: str = sys.executable,
) -> list[Step]:
    """The steps named in `steps` (in plan order), each with its scaled share of `budget_s`."""
    if budget_s <= 0:
        raise PlanError(f"--budget-s must be > 0, got {budget_s}")
    unknown = [name for name in steps if name not in SHARES_S]
    if unknown:
        raise PlanError(f"unknown steps {unknown}; valid: {', '.join(STEP_NAMES)}")
    size = size or ("full" if device.startswith("cuda") else "smoke")
    if size not in SIZES:
        raise PlanError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")
    commands = step_commands(out, device, size, data_dir, python)
    scale = budget_s / FULL_BUDGET_S
    plan = []
    for name in STEP_NAMES:
        if name not in steps:
            continue
        command, outputs = commands[name]
        budget = SHARES_S[name] * scale
        plan.append(Step(name, tuple(command), budget, grace(name), outputs, name == "sweep"))
    return plan


def deadline(step: Step, now: float, run_deadline: float) -> float:
    """When `step`, started at `now`, must be over: its own budget, never past the run's (the
    sweep: the run's)."""
    return run_deadline if step.takes_rest else min(now + step.budget_s, run_deadline)


def smoke_sweep() -> Sweep:
    """The smoke run's sweep, standing in on CPU for `fixed_ml1m` (sweeps/fixed_ml1m.py): two
    synthetic SASRec trials of two epochs."""
    tiny = TrialConfig(dataset="synthetic", hidden_size=16, max_len=10, num_heads=1, batch_size=64)
    return Sweep(
        name="gpu_smoke",
        description="synthetic SASRec, none and simple x 1 seed, 2 epochs (CPU smoke run)",
        cells=(Cell(tiny),),
        budget=Budget(max_epochs=2, patience=2),
        seeds=(1,),
        mechanisms={"sasrec": ("none", "simple")},
    )
