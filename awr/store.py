"""Access to an MLflow store: its URI (the one parser of `sqlite:///` URIs), a client, the
sweep's experiment, and run searches by tag (names: awr/schema.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from awr.errors import AwrError
from awr.schema import EXPERIMENT_KIND, KIND, MODEL_TRAINING, PARENT_RUN, TRIAL, UNCHOSEN_KINDS

if TYPE_CHECKING:  # mlflow is imported where it is used: it is slow to import
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

SQLITE = "sqlite:///"
STORE_FILE = "mlflow.db"


class StoreError(AwrError, ValueError):
    """An MLflow store cannot be used as given (e.g. a relative sqlite URI)."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite URI, as written (`sqlite:////abs/x.db` -> /abs/x.db,
    `sqlite:///runs/x.db` -> runs/x.db); None for any other URI."""
    return Path(uri.removeprefix(SQLITE)) if uri.startswith(SQLITE) else None


def sqlite_uri(path: Path) -> str:
    """The sqlite URI of a database file: `sqlite:///` + its path (absolute: four slashes)."""
    return SQLITE + str(path)


def default_tracking_uri(out: Path) -> str:
    """The embedded store of a sweep folder: `sqlite:////abs/out/mlflow.db`."""
    return sqlite_uri((Path(out) / STORE_FILE).resolve())


def check_tracking_uri(uri: str) -> None:
    """Refuse a relative sqlite URI: each Ray trial would resolve it in its own folder."""
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        raise StoreError(
            f"tracking URI {uri!r} is relative; use an absolute one (sqlite:////abs/path.db)"
        )


def artifact_location(uri: str) -> str | None:
    """Artifacts of a sqlite store go beside its database (never to a trial's ./mlruns)."""
    path = sqlite_path(uri)
    return None if path is None else (path.parent / "mlartifacts").as_uri()


def client_for(uri: str) -> MlflowClient:
    """An MLflow client of the store at `uri` (MLflow's telemetry off)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_experiment(client: MlflowClient, sweep: str, uri: str) -> str:
    """The id of the experiment named after the sweep, created on first use, marked as model
    training (`mark_model_training`)."""
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        tags = {EXPERIMENT_KIND: MODEL_TRAINING}
        return client.create_experiment(sweep, artifact_location=artifact_location(uri), tags=tags)
    mark_model_training(client, experiment.experiment_id, experiment.tags)
    return experiment.experiment_id


def mark_model_training(client: MlflowClient, experiment_id: str, tags: Mapping[str, str]) -> bool:
    """Set the experiment's kind to model training, so that MLflow 3's UI opens its runs table
    (not the GenAI view of traces and prompts), unless someone chose a kind: an experiment with
    no kind, or one the UI inferred (`no_inferred_type`, `..._inferred`), is marked; one whose
    kind was picked in the UI keeps it. Returns whether it set the tag."""
    kind = tags.get(EXPERIMENT_KIND, "")
    chosen = kind and kind not in UNCHOSEN_KINDS and not kind.endswith("_inferred")
    if kind == MODEL_TRAINING or chosen:
        return False
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return True


def search_all(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    """Every active run matching `filter_string`, following MLflow's pagination."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def tag_filter(tags: Mapping[str, str]) -> str:
    """An MLflow filter string matching runs that carry all of `tags`."""
    return " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())


def trial_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    """Every trial run of the experiment, whatever its status."""
    return search_all(client, experiment_id, tag_filter({KIND: TRIAL}))


def child_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list[Run]:
    return search_all(client, experiment_id, tag_filter({PARENT_RUN: parent_id}))
