"""A two-stage sweep on the synthetic dataset through Ray Tune + Optuna, checked in MLflow:
parent and trial runs with the schema the analysis reads, per-epoch histories, test metrics and
artifacts; stage 2 at stage 1's best validation config; a diverging trial failing alone."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from sweep_fixtures import STAGE2_MECHANISMS, tiny

from awr.config import TrialConfig
from awr.eval.metrics import METRIC_NAMES
from awr.eval.ranks import UserRanks
from awr.store import default_tracking_uri
from awr.sweep import SweepError, SweepOptions, run_sweep

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")

TRIAL_TAGS = ("sweep", "stage", "dataset", "backbone", "mechanism", "seed", "git_commit",
              "data_checksum", "ray_trial_id", "mlflow.parentRunId")  # fmt: skip
EPOCH_METRICS = ("train/loss", "valid/ndcg_5", "valid/recall_1", "grad_norm", "epoch_seconds")


@dataclass
class SweepRun:
    out: Path
    code: int
    client: MlflowClient
    runs: list[Run]
    log: str = ""  # what the driver printed

    def kind(self, kind: str, stage: str | None = None) -> list[Run]:
        return [
            r
            for r in self.runs
            if r.data.tags.get("awr.kind") == kind
            and (stage is None or r.data.tags.get("stage") == stage)
        ]


@pytest.fixture(scope="module")
def tiny_run(ray_local: object, tmp_path_factory: pytest.TempPathFactory) -> SweepRun:
    out = tmp_path_factory.mktemp("tiny_sweep")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("AWR_HEARTBEAT_SECONDS", "0.5")  # a trial takes seconds: some beats
        code = run_sweep(tiny(), SweepOptions(name="tiny", out=out))
    print(printed.getvalue())
    client = MlflowClient(tracking_uri=default_tracking_uri(out))
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return SweepRun(out, code, client, runs, printed.getvalue())


def test_the_sweep_finishes_with_one_parent_per_stage(tiny_run: SweepRun) -> None:
    assert tiny_run.code == 0
    parents = {r.data.tags["stage"]: r for r in tiny_run.kind("parent")}
    assert sorted(parents) == ["1", "2"]
    for parent in parents.values():
        tags = parent.data.tags
        assert (tags["sweep"], tags["dataset"], tags["backbone"]) == ("tiny", "synthetic", "sasrec")
        assert parent.info.status == "FINISHED"
    for trial in tiny_run.kind("trial"):
        stage = trial.data.tags["stage"]
        assert trial.data.tags["mlflow.parentRunId"] == parents[stage].info.run_id
    assert len(tiny_run.kind("trial", "1")) == 3
    assert len(tiny_run.kind("trial", "2")) == 2
    searched = parents["1"].data.params
    assert (searched["searched"], searched["sampler"], searched["trials"]) == ("lr", "grid", "3")
    assert "lr" not in searched and searched["hidden_size"] == "16"


def test_runs_are_named_by_what_they_vary_and_progress_is_told(tiny_run: SweepRun) -> None:
    first = sorted(r.info.run_name for r in tiny_run.kind("trial", "1"))
    assert first == ["synthetic-sasrec-none-lr0.01", "synthetic-sasrec-none-lr1e-3",
                     "synthetic-sasrec-none-lr1e6"]  # fmt: skip
    second = sorted(r.info.run_name for r in tiny_run.kind("trial", "2"))
    assert second == ["synthetic-sasrec-none-s1", "synthetic-sasrec-simple-s1"]
    lines = tiny_run.log.splitlines()
    assert "\r" not in tiny_run.log
    beats = [line for line in lines if " running: " in line]
    assert beats and all(line.startswith("[stage ") and ", " in line for line in beats)
    done = [line for line in lines if " after " in line and " epochs in " in line]
    assert len(done) == 4  # the diverging trial has a FAILED line instead
    stage1 = [line for line in done if line.startswith("[stage 1 ")]
    assert all("| stage " in line and " elapsed, left " in line for line in done)
    assert all("| sweep " in line for line in stage1)  # stage 2 follows stage 1


def test_trial_runs_carry_tags_and_every_config_field(tiny_run: SweepRun) -> None:
    names = {f.name for f in fields(TrialConfig)}
    trial_ids = set()
    for run in tiny_run.kind("trial"):
        tags = run.data.tags
        assert all(tags.get(tag) for tag in TRIAL_TAGS), tags
        assert tags["sweep"] == "tiny"
        assert tags["mechanism"] == run.data.params["mechanism"]
        assert tags["seed"] == run.data.params["seed"]
        assert set(run.data.params) == names
        assert run.data.params["length_groups"] == "1"  # auto: equal planted lengths
        trial_ids.add(tags["ray_trial_id"])
    assert len(trial_ids) == len(tiny_run.kind("trial"))
    assert {r.info.status for r in tiny_run.runs} <= {"FINISHED", "FAILED"}


def test_finished_trials_have_histories_final_metrics_and_artifacts(
    tiny_run: SweepRun, tmp_path: Path
) -> None:
    finished = [r for r in tiny_run.kind("trial") if r.info.status == "FINISHED"]
    assert len(finished) == 4
    for run in finished:
        metrics = run.data.metrics
        epochs = int(metrics["epochs_run"])
        assert epochs == 3
        for key in EPOCH_METRICS:
            history = tiny_run.client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == list(range(1, epochs + 1)), key
        for name in METRIC_NAMES:
            assert 0.0 <= metrics[f"test/{name}"] <= 1.0
            assert 0.0 <= metrics[f"best_valid/{name}"] <= 1.0
        for key in ("best_epoch", "num_params", "seconds"):
            assert metrics[key] > 0
        assert_artifacts(tiny_run.client, run, tmp_path / run.info.run_id)


def assert_artifacts(client: MlflowClient, run: Run, folder: Path) -> None:
    folder.mkdir()
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"config.json", "epochs.csv", "attention.npz", "ranks.npz"}
    local = Path(client.download_artifacts(run.info.run_id, "", str(folder)))
    config = json.loads((local / "config.json").read_text())
    assert {k: str(v) for k, v in config.items()} == run.data.params
    rows = list(csv.reader(io.StringIO((local / "epochs.csv").read_text())))
    assert rows[0][:4] == ["epoch", "train_loss", "grad_norm", "epoch_seconds"]
    assert rows[0][4:] == [f"valid_{name}" for name in METRIC_NAMES]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    with np.load(local / "attention.npz") as attention:
        assert "layer0_A" in attention.files
        assert attention["layer0_A"].shape[0] == 4  # capture_users
        assert ("layer0_refined" in attention.files) == (config["mechanism"] != "none")
    ranks = UserRanks.load(local / "ranks.npz")
    assert ranks.metrics("test") == pytest.approx(
        {name: run.data.metrics[f"test/{name}"] for name in METRIC_NAMES}, abs=1e-9
    )


def test_stage_two_runs_at_stage_one_best_validation_config(tiny_run: SweepRun) -> None:
    stage1 = [r for r in tiny_run.kind("trial", "1") if r.info.status == "FINISHED"]
    best = max(stage1, key=lambda r: r.data.metrics["best_valid/ndcg_5"])
    assert best.data.params["lr"] == "0.01"
    varying = {"mechanism", "seed"}
    expected = {k: v for k, v in best.data.params.items() if k not in varying}
    stage2 = tiny_run.kind("trial", "2")
    assert sorted(r.data.params["mechanism"] for r in stage2) == ["none", "simple"]
    for run in stage2:
        assert {k: v for k, v in run.data.params.items() if k not in varying} == expected
        assert run.data.params["seed"] == "1"
    parent = next(r for r in tiny_run.kind("parent") if r.data.tags["stage"] == "2")
    assert parent.data.params["lr"] == "0.01"
    state = json.loads((tiny_run.out / "tiny.sweep.json").read_text())
    assert state["units"]["1/synthetic/sasrec"]["best_config"]["lr"] == 0.01


def test_a_diverging_trial_fails_alone_with_its_error(tiny_run: SweepRun) -> None:
    stage1 = {r.data.params["lr"]: r for r in tiny_run.kind("trial", "1")}
    failed = stage1["1000000.0"]
    assert failed.info.status == "FAILED"
    assert "TrainingDiverged" in failed.data.tags["error"]
    assert "test/ndcg_5" not in failed.data.metrics
    assert stage1["0.001"].info.status == stage1["0.01"].info.status == "FINISHED"
    state = json.loads((tiny_run.out / "tiny.sweep.json").read_text())
    assert state["units"]["1/synthetic/sasrec"]["failed"] == 1


def test_a_finished_sweep_is_not_run_again(tiny_run: SweepRun) -> None:
    options = SweepOptions(name="tiny", out=tiny_run.out)
    with pytest.raises(SweepError, match="--resume"):
        run_sweep(tiny(), options)
    assert run_sweep(tiny(), SweepOptions(name="tiny", out=tiny_run.out, resume=True)) == 0
    experiment = tiny_run.client.get_experiment_by_name("tiny")
    after = tiny_run.client.search_runs([experiment.experiment_id], max_results=1000)
    assert len(after) == len(tiny_run.runs)


def test_asking_for_gpus_the_cluster_lacks_is_an_error(ray_local: object, tmp_path: Path) -> None:
    options = SweepOptions(name="tiny", out=tmp_path, gpus_per_trial=0.5)
    with pytest.raises(SweepError, match="GPUs"):
        run_sweep(tiny(), options)
    assert not (tmp_path / "tiny.sweep.json").exists()


def test_resuming_with_more_seeds_runs_only_the_new_seeds(tiny_run: SweepRun) -> None:
    """Runs last in this module: it adds seed 2's stage-2 trials to the shared finished sweep."""
    options = SweepOptions(name="tiny", out=tiny_run.out, resume=True, seeds=(2,))
    assert run_sweep(tiny(), options) == 0
    experiment = tiny_run.client.get_experiment_by_name("tiny")
    after = tiny_run.client.search_runs([experiment.experiment_id], max_results=1000)
    new = [r for r in after if r.info.run_id not in {old.info.run_id for old in tiny_run.runs}]
    trials = [r for r in new if r.data.tags.get("awr.kind") == "trial"]
    assert sorted((r.data.tags["stage"], r.data.tags["seed"]) for r in trials) == [("2", "2")] * 2
    assert {r.data.tags["mechanism"] for r in trials} == set(STAGE2_MECHANISMS["sasrec"])
    state = json.loads((tiny_run.out / "tiny.sweep.json").read_text())
    assert {"2/synthetic/sasrec/seeds=1", "2/synthetic/sasrec/seeds=2"} <= set(state["units"])
