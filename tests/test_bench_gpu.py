"""The prepared GPU run's plan and budget logic (awr/bench/gpu_*.py): shares, deadlines, and a
run of fake steps that finish, fail, are stopped at their deadline, ignore the stop and are
killed, are unavailable or get no time; plus the CPU smoke run of the real plan (slow)."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from awr.bench.gpu_plan import (
    FULL_BUDGET_S,
    SHARES_S,
    STEP_NAMES,
    PlanError,
    Step,
    build_plan,
    deadline,
    smoke_sweep,
)
from awr.bench.gpu_run import execute, main
from awr.sweep.plan import plan_units
from sweeps import load_sweep


def test_full_plan_shares_the_eight_minutes_and_scales_with_the_budget(tmp_path: Path) -> None:
    assert sum(SHARES_S.values()) == FULL_BUDGET_S == 480
    plan = build_plan(tmp_path, "cuda")
    assert [s.name for s in plan] == list(STEP_NAMES)
    assert [s.takes_rest for s in plan] == [False] * 6 + [True]
    harness = plan[1].command
    assert harness[harness.index("--datasets") + 1] == "ml-1m,beauty"
    assert plan[-1].command[plan[-1].command.index("--sweep") + 1] == "fixed_ml1m"
    assert "--resume" not in plan[-1].command  # a first run starts the sweep
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "fixed_ml1m.sweep.json").write_text("{}")
    assert "--resume" in build_plan(tmp_path, "cuda")[-1].command  # a rerun resumes it
    assert plan[-1].grace_s == 45.0 and plan[0].grace_s == 10.0
    small = build_plan(tmp_path, "cpu", budget_s=60)
    assert [s.budget_s for s in small] == [SHARES_S[s.name] / 8 for s in small]
    assert small[1].command[small[1].command.index("--datasets") + 1] == "synthetic:tiny"
    assert small[1].grace_s == 10.0  # at most: a quarter of its 18.75 s when it runs
    picked = build_plan(tmp_path, "cpu", steps=["sweep", "tests"])
    assert [s.name for s in picked] == ["tests", "sweep"]  # plan order
    with pytest.raises(PlanError, match="unknown steps"):
        build_plan(tmp_path, steps=["warp"])
    with pytest.raises(PlanError, match="must be > 0"):
        build_plan(tmp_path, budget_s=0)
    with pytest.raises(PlanError, match="--size must be one of full, smoke"):
        build_plan(tmp_path, size="huge")


def test_deadlines_keep_within_the_run() -> None:
    step = Step("a", ("true",), budget_s=10, grace_s=1)
    assert deadline(step, now=100, run_deadline=200) == 110
    assert deadline(step, now=195, run_deadline=200) == 200
    rest = Step("sweep", ("true",), budget_s=10, grace_s=1, takes_rest=True)
    assert deadline(rest, now=100, run_deadline=200) == 200


def test_the_sweeps_of_the_run_plan_as_described() -> None:
    assert [(u.stage, u.trials) for u in plan_units(load_sweep("fixed_ml1m"))] == [
        (2, 12),
        (2, 30),
    ]  # the fixed sweep's ML-1M half: 42 of its 84 trials
    assert [(u.stage, u.trials) for u in plan_units(smoke_sweep())] == [(2, 2)]


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_a_run_of_fake_steps_keeps_every_deadline(tmp_path: Path) -> None:
    ignore = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(30)"
    plan = [
        Step("ok", python("print('hello')"), budget_s=5, grace_s=1),
        Step("failed", python("raise SystemExit(1)"), budget_s=5, grace_s=1),
        Step("unavailable", python("raise SystemExit(3)"), budget_s=5, grace_s=1),
        # SIGINT a quarter of its 3 s before the end: well after a slow python start-up
        Step("stopped", python("import time; time.sleep(30)"), budget_s=3, grace_s=1.5),
        Step("killed", python(ignore), budget_s=0.8, grace_s=0.6),
        Step("rest", python("import time; time.sleep(30)"), 0.1, grace_s=0.5, takes_rest=True),
        Step("late", python("print('never')"), budget_s=5, grace_s=1),
    ]
    started = time.monotonic()
    # 14 s: the fixed steps need about 7 s (each a python start-up) even on a busy machine, and
    # the last one takes what is left
    summary = execute(plan, tmp_path, budget_s=14, header={"device": "test"}, min_step_s=0.3)
    elapsed = time.monotonic() - started
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert statuses == {
        "ok": "ok", "failed": "failed", "unavailable": "unavailable", "stopped": "stopped",
        "killed": "killed", "rest": "stopped", "late": "skipped",
    }  # fmt: skip
    assert elapsed < 14 + 3  # the budget, plus polling and process start-up (not a 30 s sleep)
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["rest"]["allowed_s"] > 0.5  # what the run had left, not its 0.1 s
    assert 2.1 < steps["stopped"]["seconds"] < 3  # SIGINT at 2.25 s (a quarter before its end)
    assert json.loads((tmp_path / "gpu_run.json").read_text()) == summary
    assert summary["finished"] and summary["device"] == "test"
    assert "hello" in (tmp_path / "gpu_run.log").read_text()
    assert (tmp_path / "gpu_util.csv").read_text().startswith("unix_time,")


def test_a_run_started_with_sigint_ignored_still_stops_its_steps(tmp_path: Path) -> None:
    # as under `nohup ... &` or a CI job: the ignored SIGINT would reach the step ignored
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plan = [Step("stopped", python("import time; time.sleep(30)"), budget_s=3, grace_s=1.5)]
        summary = execute(plan, tmp_path, budget_s=5, header={}, min_step_s=0.3)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # given back as it was
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [s["status"] for s in summary["steps"]] == ["stopped"]
    assert summary["steps"][0]["seconds"] < 3  # ended by its SIGINT, not killed at 3 s


def test_bad_options_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--steps", "tests,warp"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown steps ['warp']")


@pytest.mark.slow
def test_the_cpu_smoke_run_of_the_real_plan(tmp_path: Path) -> None:
    steps = "harness,packed-seeds,sweep"
    # twice the full run's time: its steps on tiny shapes, on a CPU that may be busy
    run = ["--out", str(tmp_path), "--device", "cpu", "--steps", steps, "--budget-s", "960"]
    assert main(run) == 0
    summary = json.loads((tmp_path / "gpu_run.json").read_text())
    records = {s["name"]: s for s in summary["steps"]}
    assert records["harness"]["status"] == "ok", (tmp_path / "gpu_run.log").read_text()
    (figure,) = records["harness"]["figures"]
    assert figure["dataset"] == "synthetic:tiny" and figure["train_seconds_per_epoch"] > 0
    assert records["packed-seeds"]["status"] == "ok", (tmp_path / "gpu_run.log").read_text()
    packs = json.loads((tmp_path / "packed-seeds.json").read_text())
    assert [r["packed_seeds"] for r in packs] == [1, 3, 5]
    assert all(r["packed_speedup"] > 0 and r["epochs"] == 1 for r in packs)
    assert records["sweep"]["status"] == "ok", (tmp_path / "gpu_run.log").read_text()
    assert (tmp_path / "sweep").is_dir() and summary["finished"]
