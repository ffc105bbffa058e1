"""Kill a sweep's driver with SIGKILL mid-sweep, resume it with --resume, and count: every
trial once in MLflow, none lost, none duplicated, no epoch logged twice, no run left RUNNING, no
Ray process of the killed driver left behind (counted from the process table)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from awr.store import default_tracking_uri
from awr.sweep.processes import SESSION_FILE, session_processes, start_ticks

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")

REPO = Path(__file__).resolve().parents[1]
SWEEP = "tests.sweep_fixtures:resumable"
STAGE2_RUNS = {("none", "1"), ("none", "2"), ("simple", "1"), ("simple", "2")}


def launch(out: Path, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "orchestrate.py", "--sweep", SWEEP, "--out", str(out), *extra]
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to clean up after a failed test
    )


def trial_runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("resumable")
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], "tags.`awr.kind` = 'trial'", max_results=1000
    )


def parent_runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("resumable")
    return client.search_runs([experiment.experiment_id], "tags.`awr.kind` = 'parent'")


def wait_for_finished(
    uri: str, log: Path, count: int, process: subprocess.Popen, limit: float
) -> None:
    """Poll MLflow (once the driver has created the store) until `count` trials finished."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        started = "[stage 1" in log.read_text()
        if started and sum(r.info.status == "FINISHED" for r in trial_runs(uri)) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} trials finished in {limit} s: {log.read_text()}")


def test_a_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = tmp_path / "sweep.log"
    uri = default_tracking_uri(out)
    processes = [launch(out, log)]
    try:
        wait_for_finished(uri, log, 3, processes[0], limit=600)
        session = json.loads((out / SESSION_FILE).read_text())["session_dir"]
        ray = ray_processes(processes[0].pid)
        assert len(ray) >= 4 and set(ray) <= set(session_processes(session))
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        runs = trial_runs(uri)
        finished = sum(r.info.status == "FINISHED" for r in runs)
        assert finished < 6, "killed too late"
        time.sleep(1)
        left = [pid for pid, ticks in ray.items() if start_ticks(pid) == ticks]
        print(f"killed after {finished} finished trials; {len(runs)} trial runs then; "
              f"{len(left)} of its {len(ray)} Ray processes alive")  # fmt: skip

        processes.append(launch(out, log, "--resume"))
        assert processes[1].wait(timeout=300) == 0, log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    runs = trial_runs(uri)
    print(f"after --resume: {len(runs)} trial runs")
    statuses = Counter(r.info.status for r in runs)
    assert statuses == {"FINISHED": 6}, (statuses, log.read_text())
    ids = Counter(r.data.tags["ray_trial_id"] for r in runs)
    assert max(ids.values()) == 1
    stage2 = [r for r in runs if r.data.tags["stage"] == "2"]
    assert {(r.data.params["mechanism"], r.data.params["seed"]) for r in stage2} == STAGE2_RUNS
    for run in runs:  # every epoch once: a resumed trial redoing an epoch does not log it again
        epochs = int(run.data.metrics["epochs_run"])
        client = MlflowClient(tracking_uri=uri)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "valid/ndcg_5")]
        assert sorted(steps) == list(range(1, epochs + 1))
    parents = parent_runs(uri)
    assert sorted(r.info.status for r in parents) == ["FINISHED", "FINISHED"]
    assert "resuming" in log.read_text()
    assert [pid for pid, ticks in ray.items() if start_ticks(pid) == ticks] == []
    assert session_processes(session) == []
    if left:
        assert "Ray processes left by an earlier, killed driver" in log.read_text()
    assert not (out / SESSION_FILE).exists()


def ray_processes(driver: int) -> dict[int, int]:
    """pid -> start ticks of every live descendant of `driver`, from the process table's
    parent links (independent of the finder in awr.sweep.processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = [driver]
    while todo:
        for child in children.get(todo.pop(), []):
            ticks = start_ticks(child)
            if ticks is not None:
                found[child] = ticks
                todo.append(child)
    return found


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_leaves_a_resumable_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = tmp_path / "sweep.log"
    uri = default_tracking_uri(out)
    processes = [launch(out, log)]
    try:
        wait_for_finished(uri, log, 1, processes[0], limit=600)
        os.killpg(processes[0].pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        assert processes[0].wait(timeout=120) == 130, log.read_text()
        assert "--resume" in log.read_text()
        statuses = Counter(r.info.status for r in trial_runs(uri) + parent_runs(uri))
        assert "RUNNING" not in statuses and statuses["FINISHED"] >= 1, statuses
        assert not (out / SESSION_FILE).exists()

        processes.append(launch(out, log, "--resume"))
        assert processes[1].wait(timeout=300) == 0, log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    runs = trial_runs(uri)
    assert Counter(r.info.status for r in runs) == {"FINISHED": 6}
    assert max(Counter(r.data.tags["ray_trial_id"] for r in runs).values()) == 1
