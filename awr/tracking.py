"""Writing a sweep's MLflow runs: a parent run per stage x dataset x backbone, and trial runs
that reattach by Ray trial id on resume, with batched logging. The names written (tags, metric
keys, artifacts, statuses) are declared in awr/schema.py; the store itself: awr/store.py.

Trial runs are named by what they vary: stage 1 by the searched values, stage 2 by mechanism,
seed and axes (awr/sweep/naming.py).
"""

from __future__ import annotations

import csv
import json
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from awr.schema import (
    ATTENTION_FILE,
    BEST,
    CONFIG_FILE,
    CSV,
    EPOCH_COLUMNS,
    EPOCHS_FILE,
    ERROR,
    ERROR_LIMIT,
    FAILED,
    KILLED,
    KIND,
    PARENT,
    PARENT_RUN,
    PARENT_TAGS,
    RAY_TRIAL_ID,
    RUNNING,
    TEST,
    TRAIN_LOSS,
    TRIAL,
    TRIAL_TAGS,
    metric_key,
)
from awr.store import child_runs, client_for, search_all, tag_filter

if TYPE_CHECKING:  # mlflow is imported where it is used: it is slow to import
    from mlflow.tracking import MlflowClient

    from awr.train.trainer import EpochRecord
    from awr.trial import TrialResult

BATCH = 100  # MLflow accepts at most 100 params or tags per batch, 1000 entities in all


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
    found = search_all(client, experiment_id, tag_filter(match))
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status=RUNNING)
        set_tags(client, run_id, tags)
        return run_id, True
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    return run.info.run_id, False


def parent_tags(sweep: str, stage: int, dataset: str, backbone: str) -> dict[str, str]:
    """The tags of a parent run (PARENT_TAGS)."""
    tagged = (sweep, str(stage), dataset, backbone)
    return {KIND: PARENT, **dict(zip(PARENT_TAGS, tagged, strict=True))}


def trial_run_tags(
    sweep: str,
    stage: int,
    values: Mapping[str, Any],
    git_commit: str,
    data_checksum: str,
    ray_trial_id: str,
    parent_run_id: str,
) -> dict[str, str]:
    """The tags of a trial run (TRIAL_TAGS): dataset, backbone, mechanism and seed from the
    trial's TrialConfig `values`."""
    fields = (str(values[key]) for key in ("dataset", "backbone", "mechanism", "seed"))
    tagged = (sweep, str(stage), *fields, git_commit, data_checksum, ray_trial_id)
    return {KIND: TRIAL, **dict(zip(TRIAL_TAGS, tagged, strict=True)), PARENT_RUN: parent_run_id}


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
        set_tags(client, run_id, {ERROR: error[-ERROR_LIMIT:]})
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
        trial_id = run.data.tags.get(RAY_TRIAL_ID, "")
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
        match = {key: tags[key] for key in (PARENT_RUN, RAY_TRIAL_ID)}
        if "seed" in tags:
            match["seed"] = tags["seed"]
        run_id, reattached = open_run(client, experiment_id, match, tags, run_name)
        log_params(client, run_id, params)
        history = client.get_metric_history(run_id, TRAIN_LOSS) if reattached else []
        return cls(client, run_id, {metric.step for metric in history})

    def log_epoch(self, record: EpochRecord) -> None:
        """One epoch's metrics at step=epoch; an epoch the run already has (a trial resumed
        from a checkpoint older than its last logged epoch redoes it, exactly) is not logged
        again."""
        if record.epoch not in self.logged:
            log_metrics(self.client, self.run_id, record.metrics(), step=record.epoch)
            self.logged.add(record.epoch)

    def log_result(self, result: TrialResult) -> None:
        final = {metric_key(name, TEST): value for name, value in result.test.items()}
        final.update({metric_key(name, BEST): value for name, value in result.valid.items()})
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

    (folder / CONFIG_FILE).write_text(json.dumps(result.config.to_dict(), indent=2) + "\n")
    write_epochs_csv(folder / EPOCHS_FILE, result.history)
    if result.attention:
        np.savez(folder / ATTENTION_FILE, **result.attention)
    if result.ranks is not None:
        result.ranks.save(folder / RANKS_FILE)


def write_epochs_csv(path: Path, history: Sequence[EpochRecord]) -> None:
    """One row per epoch: epoch, train_loss, grad_norm, epoch_seconds, valid_<metric>..."""
    names = list(history[0].valid) if history else []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EPOCH_COLUMNS, *(metric_key(name, CSV) for name in names)])
        for r in history:
            row: Iterable[Any] = (r.epoch, r.train_loss, r.grad_norm, r.epoch_seconds)
            writer.writerow([*row, *(r.valid[name] for name in names)])
