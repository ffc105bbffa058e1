"""The run schema and the MLflow helpers of the sweep layer: metric keys and tags as declared in
awr/schema.py, absolute sqlite URIs, reattaching a trial's run instead of duplicating it,
settling runs left RUNNING, and the epochs.csv layout."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from awr import schema, store, tracking
from awr.train.trainer import EpochRecord

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")


def test_default_uri_is_absolute_sqlite_in_the_sweep_folder(tmp_path: Path) -> None:
    uri = store.default_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert uri.startswith("sqlite:////")
    store.check_tracking_uri(uri)
    with pytest.raises(store.StoreError, match="relative"):
        store.check_tracking_uri("sqlite:///runs/mlflow.db")
    assert store.artifact_location(uri) == (tmp_path.resolve() / "mlartifacts").as_uri()
    assert store.artifact_location("http://tracking:5000") is None
    assert store.sqlite_path(uri) == tmp_path.resolve() / "mlflow.db"
    assert store.sqlite_path("sqlite:///runs/mlflow.db") == Path("runs/mlflow.db")
    assert store.sqlite_path("http://tracking:5000") is None
    assert store.sqlite_uri(tmp_path.resolve() / "mlflow.db") == uri


def trial_tags(parent: str, trial_id: str) -> dict[str, str]:
    return {"awr.kind": "trial", "mlflow.parentRunId": parent, "ray_trial_id": trial_id}


def test_a_resumed_trial_reattaches_its_run(tmp_path: Path) -> None:
    uri = store.default_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = store.ensure_experiment(client, "sweep", uri)
    assert store.ensure_experiment(client, "sweep", uri) == experiment
    parent = tracking.open_parent(
        client, experiment, tracking.parent_tags("sweep", 1, "d", "sasrec"), {"lr": 0.1}
    )
    params = {"lr": 0.01, "seed": 1}
    run = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t1"), params, "a")
    run.end(schema.KILLED)
    again = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t1"), params, "a")
    assert again.run_id == run.run_id
    assert client.get_run(run.run_id).info.status == "RUNNING"
    other = tracking.TrialRun.attach(uri, experiment, trial_tags(parent, "t2"), params, "b")
    assert other.run_id != run.run_id
    assert len(store.trial_runs(client, experiment)) == 2
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


def test_the_experiment_opens_as_model_training_in_mlflow_3(tmp_path: Path) -> None:
    uri = store.default_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    kind = schema.EXPERIMENT_KIND
    created = store.ensure_experiment(client, "sweep", uri)
    assert client.get_experiment(created).tags[kind] == "custom_model_development"
    # an experiment made before (no kind), or one whose kind the UI guessed, is marked
    for guessed in (None, "no_inferred_type", "genai_development_inferred"):
        name = f"older-{guessed}"
        tags = {} if guessed is None else {kind: guessed}
        older = client.create_experiment(name, artifact_location=store.artifact_location(uri))
        for key, value in tags.items():
            client.set_experiment_tag(older, key, value)
        assert store.ensure_experiment(client, name, uri) == older
        assert client.get_experiment(older).tags[kind] == "custom_model_development"
    # a kind someone picked in the UI stays
    chosen = client.create_experiment("chosen", tags={kind: "genai_development"})
    assert store.ensure_experiment(client, "chosen", uri) == chosen
    assert client.get_experiment(chosen).tags[kind] == "genai_development"


def test_one_metric_name_gives_every_key_the_runs_carry() -> None:
    forms = [schema.VALID, schema.TEST, schema.BEST, schema.RUNNING_BEST, schema.CSV]
    keys = [schema.metric_key("ndcg_5", form) for form in forms]
    assert keys == ["valid/ndcg_5", "test/ndcg_5", "best_valid/ndcg_5", "best_valid_ndcg_5",
                    "valid_ndcg_5"]  # fmt: skip
    assert (schema.SEARCH_METRIC, schema.SELECTION_KEY) == (
        "best_valid_ndcg_5",
        "best_valid/ndcg_5",
    )
    with pytest.raises(KeyError):
        schema.metric_key("ndcg_5", "train")


def test_an_epoch_logs_the_schemas_keys() -> None:
    """The trainer's per-epoch metrics are the schema's: the per-epoch scalars, the running
    best of the selection metric, and `valid/<m>` for each validation metric."""
    valid = {"recall_1": 0.1, "ndcg_5": 0.2}
    record = EpochRecord(3, 0.5, 0.25, 2.0, 0.1, valid, 2, 0.3)
    expected = {*schema.EPOCH_SCALARS, schema.SEARCH_METRIC}
    expected |= {schema.metric_key(name, schema.VALID) for name in valid}
    assert set(record.metrics()) == expected
    assert record.metrics()[schema.SEARCH_METRIC] == 0.3


def test_trial_and_parent_runs_carry_the_schemas_tags() -> None:
    values = {"dataset": "beauty", "backbone": "sasrec", "mechanism": "simple", "seed": 3}
    tags = tracking.trial_run_tags("quick", 2, values, "abc", "sha256:1", "t7", "p1")
    assert tags == {
        "awr.kind": "trial", "sweep": "quick", "stage": "2", "dataset": "beauty",
        "backbone": "sasrec", "mechanism": "simple", "seed": "3", "git_commit": "abc",
        "data_checksum": "sha256:1", "ray_trial_id": "t7", "mlflow.parentRunId": "p1",
    }  # fmt: skip
    assert list(tags) == [schema.KIND, *schema.TRIAL_TAGS, schema.PARENT_RUN]
    parent = tracking.parent_tags("quick", 1, "beauty", "stosa")
    assert parent == {"awr.kind": "parent", "sweep": "quick", "stage": "1", "dataset": "beauty",
                      "backbone": "stosa"}  # fmt: skip
