"""A stage-2 sweep with packed seeds through Ray Tune, checked in MLflow: one Ray trial per
mechanism, one trial run per seed with the schema of a lone trial (tags, params, per-epoch
history, final metrics, artifacts), each logging what its lone trial computes; and Tune
checkpoints by time (a unit test of the reporters, without Ray)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sweep_fixtures import packed
from test_sweep_run import EPOCH_METRICS, TRIAL_TAGS, assert_artifacts

import awr.sweep.trainable as trainable
from awr.config import TrialConfig, field_types
from awr.eval.metrics import METRIC_NAMES
from awr.store import default_tracking_uri
from awr.sweep import SweepOptions, run_sweep
from awr.sweep.pack_trainable import PackReporter
from awr.train.packed import PackEpoch
from awr.trial import run_trial

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")


@pytest.fixture(scope="module")
def packed_run(ray_local: object, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("packed_sweep")
    code = run_sweep(packed(), SweepOptions(name="packed", out=out))
    client = MlflowClient(tracking_uri=default_tracking_uri(out))
    experiment = client.get_experiment_by_name("packed")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return out, code, client, runs


def test_one_ray_trial_per_mechanism_and_one_run_per_seed(packed_run, tmp_path: Path) -> None:
    out, code, client, runs = packed_run
    assert code == 0
    trials = [r for r in runs if r.data.tags.get("awr.kind") == "trial"]
    assert sorted((r.data.params["mechanism"], r.data.params["seed"]) for r in trials) == [
        ("none", "1"), ("none", "2"), ("simple", "1"), ("simple", "2"),
    ]  # fmt: skip
    assert {r.info.status for r in runs} == {"FINISHED"}
    per_trial = Counter(r.data.tags["ray_trial_id"] for r in trials)
    assert sorted(per_trial.values()) == [2, 2]  # each Ray trial is a pack of both seeds
    names = set(field_types())
    for run in trials:
        tags = run.data.tags
        assert all(tags.get(tag) for tag in TRIAL_TAGS), tags
        assert tags["seed"] == run.data.params["seed"] and tags["pack_seeds"] == "1,2"
        assert set(run.data.params) == names
        epochs = int(run.data.metrics["epochs_run"])
        for key in EPOCH_METRICS:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(1, epochs + 1)), key
        assert_artifacts(client, run, tmp_path / run.info.run_id)
    state = json.loads((out / "packed.sweep.json").read_text())
    record = state["units"]["2/synthetic/sasrec/seeds=1,2"]
    assert (record["trials"], record["finished"], record["failed"]) == (4, 4, 0)


def test_each_member_logged_what_its_lone_trial_computes(packed_run) -> None:
    _, _, client, runs = packed_run
    run = next(
        r
        for r in runs
        if r.data.tags.get("awr.kind") == "trial"
        and (r.data.params["mechanism"], r.data.params["seed"]) == ("simple", "2")
    )
    config = TrialConfig(
        **json.loads(Path(client.download_artifacts(run.info.run_id, "config.json")).read_text())
    )
    alone = run_trial(config, log=None)
    metrics = run.data.metrics
    assert metrics["best_epoch"] == alone.best_epoch and metrics["epochs_run"] == alone.epochs_run
    for name in METRIC_NAMES:
        assert metrics[f"test/{name}"] == pytest.approx(alone.test[name], abs=1e-6)
        assert metrics[f"best_valid/{name}"] == pytest.approx(alone.valid[name], abs=1e-6)
    losses = sorted(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [m.value for m in losses] == pytest.approx(
        [r.train_loss for r in alone.history], rel=1e-5
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_checkpoints_are_saved_by_time_and_after_the_last_epoch(monkeypatch) -> None:
    reports: list[tuple[dict, bool]] = []
    monkeypatch.setattr(
        trainable.tune,
        "report",
        lambda metrics, checkpoint=None: reports.append((metrics, checkpoint is not None)),
    )
    clock = Clock()
    reports_by_time = trainable.TuneReports(25.0, clock)
    saved = []
    for epoch in range(1, 8):
        clock.now = 10.0 * epoch
        reports_by_time.step(
            {"epoch": epoch}, lambda e=epoch: saved.append(e) or {}, last=epoch == 7
        )
    assert [e for e, (m, c) in enumerate(reports, 1) if c] == [3, 6]  # 30 s and 60 s
    assert len(reports) == 6 and reports_by_time.pending is not None  # epoch 7 held back
    assert reports_by_time.release() and reports[-1] == ({"epoch": 7}, True)
    assert saved == [3, 6, 7]


class FakeRun:
    def __init__(self) -> None:
        self.epochs, self.ended = [], None

    def log_epoch(self, record) -> None:
        self.epochs.append(record.epoch)

    def log_result(self, result) -> None:
        raise AssertionError("a failed member has no result")

    def end(self, status, error=None) -> None:
        self.ended = (status, error)


def test_a_failed_member_ends_its_own_run_and_the_pack_goes_on(monkeypatch) -> None:
    from awr.packed_trial import MemberFailure

    reports = []
    monkeypatch.setattr(
        trainable.tune,
        "report",
        lambda metrics, checkpoint=None: reports.append((metrics, checkpoint is not None)),
    )
    runs = {0: FakeRun(), 1: FakeRun()}
    reporter = PackReporter(dict(runs), checkpoint_seconds=3600.0, earlier={})
    failure = MemberFailure(
        TrialConfig(seed=2), "TrainingDiverged: training loss is nan at epoch 1"
    )
    reporter.member_end(1, failure)
    reporter.pack_epoch(PackEpoch(1, {}, (1,), active=1), lambda: {})
    assert runs[1].ended == ("FAILED", failure.error) and runs[0].ended is None
    metrics, with_checkpoint = reports[-1]
    assert with_checkpoint  # a member ended: its end is saved at once
    assert (metrics["members_active"], metrics["members_failed"], metrics["epoch"]) == (1, 1, 1)


@pytest.mark.slow
def test_a_pack_killed_mid_training_resumes_every_member_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out, log = tmp_path / "out", tmp_path / "sweep.log"
    uri = default_tracking_uri(out)
    sweep = "tests.sweep_fixtures:packed_resumable"
    command = [sys.executable, "orchestrate.py", "--sweep", sweep, "--out", str(out)]
    repo = Path(__file__).resolve().parents[1]

    def launch(*extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*command, *extra], cwd=repo, stdout=log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def trial_runs() -> list:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("packed_resumable")
        if experiment is None:
            return []
        return client.search_runs([experiment.experiment_id], "tags.`awr.kind` = 'trial'")

    def epochs_logged(run) -> list[int]:
        history = MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "train/loss")
        return [m.step for m in history]

    processes = [launch()]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and processes[0].poll() is None:
            runs = trial_runs() if "[stage 2" in log.read_text() else []
            if runs and max(max(epochs_logged(r), default=0) for r in runs) >= 12:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no pack reached epoch 12: {log.read_text()}")
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        assert not any(r.info.status == "FINISHED" for r in trial_runs()), "killed too late"
        processes.append(launch("--resume"))
        assert processes[1].wait(timeout=400) == 0, log.read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    runs = trial_runs()
    assert Counter(r.info.status for r in runs) == {"FINISHED": 4}
    assert len({(r.data.params["mechanism"], r.data.params["seed"]) for r in runs}) == 4
    for run in runs:
        steps = Counter(epochs_logged(run))
        assert set(steps) == set(range(1, 31))
        assert steps[1] == 1, "the resumed pack started again from epoch 1"
