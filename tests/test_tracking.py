"""MLflow helpers of the sweep layer: absolute sqlite URIs, reattaching a trial's run instead of
duplicating it, settling runs left RUNNING, the epochs.csv layout, and the UI's message when
only mlflow-skinny is installed."""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from awr import tracking
from awr.train.trainer import EpochRecord

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")


def test_default_uri_is_absolute_sqlite_in_the_sweep_folder(tmp_path: Path) -> None:
    uri = tracking.default_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert uri.startswith("sqlite:////")
    tracking.check_tracking_uri(uri)
    with pytest.raises(ValueError, match="relative"):
        tracking.check_tracking_uri("sqlite:///runs/mlflow.db")
    assert tracking.artifact_location(uri) == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert tracking.artifact_location("http://tracking:5000") is None


def trial_tags(parent: str, trial_id: str) -> dict[str, str]:
    return {"awr.kind": "trial", "mlflow.parentRunId": parent, "ray_trial_id": trial_id}


def test_a_resumed_trial_reattaches_its_run(tmp_path: Path) -> None:
    uri = tracking.default_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = tracking.ensure_experiment(client, "sweep", uri)
    assert tracking.ensure_experiment(client, "sweep", uri) == experiment
    parent = tracking.open_parent(
        client, experiment, tracking.parent_tags("sweep", 1, "d", "sasrec"), {"lr": 0.1}
    )
    params = {"lr": 0.01, "seed": 1}
    run = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t1"), params, "a")
    run.end(tracking.KILLED)
    again = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t1"), params, "a")
    assert again.run_id == run.run_id
    assert client.get_run(run.run_id).info.status == "RUNNING"
    other = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t2"), params, "b")
    assert other.run_id != run.run_id
    assert len(tracking.trial_runs(client, experiment)) == 2
    reopened = tracking.open_parent(
        client, experiment, tracking.parent_tags("sweep", 1, "d", "sasrec"), {"lr": 0.1}
    )
    assert reopened == parent

    settled = tracking.settle_children(client, experiment, parent, {"t2": "boom"})
    assert settled == 2
    assert client.get_run(run.run_id).info.status == "KILLED"
    failed = client.get_run(other.run_id)
    assert (failed.info.status, failed.data.tags["error"]) == ("FAILED", "boom")
    members = [  # a pack: one Ray trial, a run per seed, each reattached to its own
        tracking.TrialRun.attach(
            uri, experiment, {**trial_tags(parent, "p1"), "seed": str(seed)}, params, "m"
        ).run_id
        for seed in (1, 2, 1)
    ]
    assert members[0] == members[2] != members[1]


def test_epochs_csv_has_one_row_per_epoch(tmp_path: Path) -> None:
    valid = {"recall_1": 0.1, "ndcg_5": 0.2, "mrr": 0.3}
    history = [EpochRecord(e, 1.0 / e, 0.5, 2.0, 0.1, valid, e, 0.2) for e in (1, 2)]
    path = tmp_path / "epochs.csv"
    tracking.write_epochs_csv(path, history)
    rows = list(csv.reader(path.open()))
    assert rows[0] == [
        "epoch",
        "train_loss",
        "grad_norm",
        "epoch_seconds",
        "valid_recall_1",
        "valid_ndcg_5",
        "valid_mrr",
    ]
    assert [row[0] for row in rows[1:]] == ["1", "2"]


def test_ui_without_full_mlflow_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(tracking.importlib.metadata, "distribution", missing)
    assert tracking.start_ui(tmp_path, None, 5000) == 2
    assert 'pip install -e ".[ui]"' in capsys.readouterr().err


def test_the_experiment_opens_as_model_training_in_mlflow_3(tmp_path: Path) -> None:
    uri = tracking.default_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    kind = tracking.EXPERIMENT_KIND
    created = tracking.ensure_experiment(client, "sweep", uri)
    assert client.get_experiment(created).tags[kind] == "custom_model_development"
    # an experiment made before (no kind), or one whose kind the UI guessed, is marked
    for guessed in (None, "no_inferred_type", "genai_development_inferred"):
        name = f"older-{guessed}"
        tags = {} if guessed is None else {kind: guessed}
        older = client.create_experiment(name, artifact_location=tracking.artifact_location(uri))
        for key, value in tags.items():
            client.set_experiment_tag(older, key, value)
        assert tracking.ensure_experiment(client, name, uri) == older
        assert client.get_experiment(older).tags[kind] == "custom_model_development"
    # a kind someone picked in the UI stays
    chosen = client.create_experiment("chosen", tags={kind: "genai_development"})
    assert tracking.ensure_experiment(client, "chosen", uri) == chosen
    assert client.get_experiment(chosen).tags[kind] == "genai_development"
