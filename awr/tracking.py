"""MLflow for sweeps: the store's URI, one experiment per sweep, a parent run per stage x dataset
x backbone, and trial runs that reattach by Ray trial id on resume; batched logging; the UI.

Schema (the analysis package reads exactly this): the experiment carries the tag
`mlflow.experimentKind=custom_model_development` (MLflow 3's UI opens it as model training);
parent runs carry the tags `awr.kind=parent`, `sweep`, `stage`, `dataset`, `backbone`; trial
runs carry `awr.kind=trial`, those tags, `mechanism`, `seed`, `git_commit`, `data_checksum`,
`ray_trial_id` and `mlflow.parentRunId` (members of a pack of seeds share their Ray trial id
and add `pack_seeds`, e.g. "1,2,3"), every TrialConfig field as a param, per-epoch metrics at
step=epoch, final `test/<m>`, `best_valid/<m>`, `best_epoch`, `epochs_run`, `num_params`,
`seconds`, and the artifacts `config.json`, `epochs.csv`, `attention.npz`, `ranks.npz`
(per-user valid and test ranks at the best-validation state, awr/eval/ranks.py). Trial runs
are named by what they vary: stage 1 by the searched values, stage 2 by mechanism, seed and
axes (awr/sweep/naming.py). Runs end FINISHED, FAILED (tag `error`) or KILLED.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # mlflow is imported where it is used: it is slow to import
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from awr.train.trainer import EpochRecord
    from awr.trial import TrialResult

PARENT = "parent"
TRIAL = "trial"
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
ERROR_LIMIT = 5000  # characters of an error message kept in the `error` tag
BATCH = 100  # MLflow accepts at most 100 params or tags per batch, 1000 entities in all
EPOCH_COLUMNS = ("epoch", "train_loss", "grad_norm", "epoch_seconds")
EPOCH_KEY = "train/loss"  # logged with every epoch: its steps are the epochs a run has
# MLflow 3's experiment kind (the UI's "Machine learning" / "GenAI apps & agents" choice).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
UNCHOSEN_KINDS = ("no_inferred_type",)  # and any "..._inferred": the UI's guesses


def default_tracking_uri(out: Path) -> str:
    """The embedded store of a sweep folder: `sqlite:////abs/out/mlflow.db`."""
    return "sqlite:///" + str((Path(out) / "mlflow.db").resolve())


def check_tracking_uri(uri: str) -> None:
    """Refuse a relative sqlite URI: each Ray trial would resolve it in its own folder."""
    if uri.startswith("sqlite:///") and not uri[len("sqlite:///") :].startswith("/"):
        raise ValueError(
            f"tracking URI {uri!r} is relative; use an absolute one (sqlite:////abs/path.db)"
        )


def artifact_location(uri: str) -> str | None:
    """Artifacts of a sqlite store go beside its database (never to a trial's ./mlruns)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


def client_for(uri: str) -> MlflowClient:
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


def _tag_filter(tags: Mapping[str, str]) -> str:
    return " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())


def trial_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    return search_all(client, experiment_id, _tag_filter({"awr.kind": TRIAL}))


def child_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list[Run]:
    return search_all(client, experiment_id, _tag_filter({"mlflow.parentRunId": parent_id}))


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Log params in batches; values already logged (a reattached run) are skipped."""
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    fresh = [Param(k, str(v)) for k, v in params.items() if existing.get(k) != str(v)]
    for start in range(0, len(fresh), BATCH):
        client.log_batch(run_id, params=fresh[start : start + BATCH])


def log_metrics(
    client: MlflowClient, run_id: str, values: Mapping[str, float], step: int = 0
) -> None:
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    metrics = [Metric(k, float(v), stamp, step) for k, v in values.items()]
    for start in range(0, len(metrics), 10 * BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + 10 * BATCH])


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for start in range(0, len(items), BATCH):
        client.log_batch(run_id, tags=items[start : start + BATCH])


def open_run(
    client: MlflowClient,
    experiment_id: str,
    match: Mapping[str, str],
    tags: Mapping[str, str],
    run_name: str,
) -> tuple[str, bool]:
    """Reattach the run whose tags include `match` (set back to RUNNING) or create one with
    `tags`. Returns (run id, reattached)."""
    found = search_all(client, experiment_id, _tag_filter(match))
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status=RUNNING)
        set_tags(client, run_id, tags)
        return run_id, True
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    return run.info.run_id, False


def parent_tags(sweep: str, stage: int, dataset: str, backbone: str) -> dict[str, str]:
    return {
        "awr.kind": PARENT,
        "sweep": sweep,
        "stage": str(stage),
        "dataset": dataset,
        "backbone": backbone,
    }


def open_parent(
    client: MlflowClient, experiment_id: str, tags: Mapping[str, str], params: Mapping[str, Any]
) -> str:
    """The parent run of a stage x dataset x backbone, reattached on resume."""
    name = f"stage{tags['stage']}-{tags['dataset']}-{tags['backbone']}"
    run_id, _ = open_run(client, experiment_id, tags, tags, name)
    log_params(client, run_id, params)
    return run_id


def end_run(client: MlflowClient, run_id: str, status: str, error: str | None = None) -> None:
    if error is not None:
        set_tags(client, run_id, {"error": error[-ERROR_LIMIT:]})
    client.set_terminated(run_id, status)


def settle_children(
    client: MlflowClient,
    experiment_id: str,
    parent_id: str,
    errors: Mapping[str, str],
) -> int:
    """End every child run still RUNNING after its Tuner returned: FAILED with the error Ray
    recorded for its trial (`errors`: ray trial id -> text), else KILLED (stopped, interrupted,
    or started by a driver that was killed before Ray recorded the trial). Returns how many."""
    settled = 0
    for run in child_runs(client, experiment_id, parent_id):
        if run.info.status != RUNNING:
            continue
        trial_id = run.data.tags.get("ray_trial_id", "")
        if trial_id in errors:
            end_run(client, run.info.run_id, FAILED, errors[trial_id])
        else:
            end_run(client, run.info.run_id, KILLED)
        settled += 1
    return settled


def git_commit(repo: Path | None = None) -> str:
    """HEAD of the code's repository, with `-dirty` for uncommitted changes; `unknown` outside
    git."""
    where = repo or Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if status else "")


class TrialRun:
    """A trial's MLflow run, written from inside the trial: per-epoch metrics in one batch each,
    the final metrics, tags and artifacts, and a terminal status."""

    def __init__(self, client: MlflowClient, run_id: str, logged: set[int] | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.ended = False
        self.logged = logged or set()  # epochs a reattached run already has

    @classmethod
    def attach(
        cls,
        uri: str,
        experiment_id: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        run_name: str,
    ) -> TrialRun:
        """Reattach the run of this Ray trial (and seed: a pack's members share the trial)
        under this parent, or create it."""
        client = client_for(uri)
        match = {key: tags[key] for key in ("mlflow.parentRunId", "ray_trial_id")}
        if "seed" in tags:
            match["seed"] = tags["seed"]
        run_id, reattached = open_run(client, experiment_id, match, tags, run_name)
        log_params(client, run_id, params)
        history = client.get_metric_history(run_id, EPOCH_KEY) if reattached else []
        return cls(client, run_id, {metric.step for metric in history})

    def log_epoch(self, record: EpochRecord) -> None:
        """One epoch's metrics at step=epoch; an epoch the run already has (a trial resumed
        from a checkpoint older than its last logged epoch redoes it, exactly) is not logged
        again."""
        if record.epoch not in self.logged:
            log_metrics(self.client, self.run_id, record.metrics(), step=record.epoch)
            self.logged.add(record.epoch)

    def log_result(self, result: TrialResult) -> None:
        final = {f"test/{name}": value for name, value in result.test.items()}
        final.update({f"best_valid/{name}": value for name, value in result.valid.items()})
        final.update(
            best_epoch=result.best_epoch,
            epochs_run=result.epochs_run,
            num_params=result.num_params,
            seconds=result.seconds,
        )
        log_metrics(self.client, self.run_id, final)
        set_tags(self.client, self.run_id, {"data_checksum": result.data_checksum})
        with tempfile.TemporaryDirectory(prefix="awr-artifacts-") as folder:
            write_artifacts(Path(folder), result)
            self.client.log_artifacts(self.run_id, folder)

    def end(self, status: str, error: str | None = None) -> None:
        if not self.ended:
            end_run(self.client, self.run_id, status, error)
            self.ended = True


def write_artifacts(folder: Path, result: TrialResult) -> None:
    """config.json, epochs.csv, attention.npz and ranks.npz of a finished trial into `folder`."""
    from awr.eval.ranks import RANKS_FILE

    (folder / "config.json").write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    write_epochs_csv(folder / "epochs.csv", result.history)
    if result.attention:
        np.savez(folder / "attention.npz", **result.attention)
    if result.ranks is not None:
        result.ranks.save(folder / RANKS_FILE)


def write_epochs_csv(path: Path, history: Sequence[EpochRecord]) -> None:
    """One row per epoch: epoch, train_loss, grad_norm, epoch_seconds, valid_<metric>..."""
    names = list(history[0].valid) if history else []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EPOCH_COLUMNS, *(f"valid_{name}" for name in names)])
        for r in history:
            row: Iterable[Any] = (r.epoch, r.train_loss, r.grad_norm, r.epoch_seconds)
            writer.writerow([*row, *(r.valid[name] for name in names)])


def start_ui(out: Path, tracking_uri: str | None, port: int) -> int:
    """Run the MLflow UI on 127.0.0.1 for a sweep folder's store (or `tracking_uri`)."""
    try:
        importlib.metadata.distribution("mlflow")
    except importlib.metadata.PackageNotFoundError:
        print(
            "the MLflow UI needs the full mlflow package (mlflow-skinny has no UI): "
            'pip install -e ".[ui]"',
            file=sys.stderr,
        )
        return 2
    uri = tracking_uri or default_tracking_uri(out)
    check_tracking_uri(uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        print(f"no MLflow store at {uri}; run a sweep with --out {out} first", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    print(f"MLflow UI for {uri} at http://127.0.0.1:{port} (Ctrl-C stops it)", flush=True)
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    try:
        return subprocess.run(command, env=environment).returncode
    except KeyboardInterrupt:
        return 0
