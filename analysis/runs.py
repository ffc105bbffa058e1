"""MLflow -> one tidy DataFrame with a row per trial run; per-run metric histories and artifacts.

Reads only what the sweep layer writes to MLflow (the names: awr/schema.py), never log files:
trial runs carry the tag `awr.kind=trial`, every TrialConfig field as a string param, and final
metrics such as `test/ndcg_5`. Metric columns hold each key's latest value, so a per-epoch key
like `valid/ndcg_5` holds the last epoch's value; use `metric_history` for curves.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Experiment, Run
from mlflow.tracking import MlflowClient

from awr.config import field_types, field_value
from awr.errors import AwrError
from awr.eval.ranks import RANKS_FILE, UserRanks
from awr.schema import ATTENTION_FILE, FINISHED, PARENT_RUN, TRIAL_TAGS
from awr.store import client_for, trial_runs

RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "run_name",
    "status",
    "parent_run_id",
    "start_time",
    "end_time",
)
# Params that do not change what a trial computes (seed is the replicate, not the config).
EXECUTION_PARAMS: tuple[str, ...] = (
    "seed",
    "device",
    "eval_batch_size",
    "compile",
    "length_groups",
)
# Params that belong to the mechanism; pairs differ in these and agree on the rest.
MECHANISM_PARAMS: tuple[str, ...] = ("mechanism", "refine_per_head", "additive_mix")


class AnalysisError(AwrError, ValueError):
    """What a report needs is not there or unreadable (no such sweep, no finished runs, a bad
    benchmark file); the message names it."""


def parse_param(name: str, text: str | None) -> Any:
    """Type a logged param string back to its TrialConfig field's type (`field_value`); names
    that are no TrialConfig field stay strings."""
    if text is None or name not in field_types():
        return text
    return field_value(name, text)


def find_experiment(client: MlflowClient, sweep: str, tracking_uri: str) -> Experiment:
    """The sweep's experiment (experiment name = sweep name), or an AnalysisError saying so."""
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        raise AnalysisError(
            f"no MLflow experiment named {sweep!r} at tracking URI {tracking_uri!r}; "
            "run the sweep first or check --tracking-uri (it must be an absolute sqlite URI)"
        )
    return experiment


def config_key(params: Mapping[str, str], ignore: Iterable[str]) -> str:
    """A canonical string of the params outside `ignore`: equal strings mean equal configs."""
    skipped = set(ignore)
    return json.dumps({k: v for k, v in sorted(params.items()) if k not in skipped})


def run_row(run: Run) -> dict[str, Any]:
    """One run as a flat dict: run info, tags, typed params, metrics, and the config keys."""
    info, data = run.info, run.data
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "parent_run_id": data.tags.get(PARENT_RUN),
        "start_time": info.start_time,
        "end_time": info.end_time,
    }
    for tag in TRIAL_TAGS:
        row[tag] = data.tags.get(tag)
    if row["seed"] is not None:
        row["seed"] = int(row["seed"])
    for name, text in data.params.items():
        row[name] = parse_param(name, text)
    row["config_key"] = config_key(data.params, EXECUTION_PARAMS)
    row["pair_key"] = config_key(data.params, EXECUTION_PARAMS + MECHANISM_PARAMS)
    row.update(data.metrics)
    return row


def runs_frame(runs: Iterable[Run]) -> pd.DataFrame:
    """Runs -> DataFrame, a row per run: run info, tags, typed params, config keys, metrics.
    Typed params whose values are all present get a plain int/bool dtype."""
    runs = list(runs)
    rows = [run_row(run) for run in runs]
    base = [*RUN_COLUMNS, *TRIAL_TAGS]
    keys = ["config_key", "pair_key"]
    if not rows:
        return pd.DataFrame(columns=[*base, *keys])
    metrics = sorted({key for run in runs for key in run.data.metrics})
    frame = pd.DataFrame(rows)
    params = [c for c in frame.columns if c not in base and c not in keys and c not in metrics]
    frame = frame[[*base, *params, *keys, *metrics]]
    types = field_types()
    for name in ("seed", *params):
        kind = types.get(name)
        if kind in (int, bool) and frame[name].notna().all():
            frame[name] = frame[name].astype(kind)
    return frame


def load_trials(sweep: str, tracking_uri: str) -> pd.DataFrame:
    """All trial runs of a sweep, whatever their status (see `finished`, `status_counts`)."""
    client = client_for(tracking_uri)
    experiment = find_experiment(client, sweep, tracking_uri)
    return runs_frame(trial_runs(client, experiment.experiment_id))


def finished(trials: pd.DataFrame) -> pd.DataFrame:
    """Only the FINISHED runs: the ones that count for tables and figures."""
    return trials[trials["status"] == FINISHED].reset_index(drop=True)


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Number of runs per status, e.g. {'FINISHED': 12, 'FAILED': 1}."""
    return {str(k): int(v) for k, v in trials["status"].value_counts().sort_index().items()}


def metric_history(tracking_uri: str, run_id: str, key: str) -> pd.Series:
    """A metric's values by step (= epoch, 1-based), the last write winning on repeated steps."""
    history = client_for(tracking_uri).get_metric_history(run_id, key)
    by_step: dict[int, tuple[int, float]] = {}
    for metric in history:
        latest = by_step.get(metric.step)
        if latest is None or metric.timestamp >= latest[0]:
            by_step[metric.step] = (metric.timestamp, metric.value)
    steps = sorted(by_step)
    index = pd.Index(steps, name="epoch", dtype="int64")
    return pd.Series([by_step[s][1] for s in steps], index=index, name=key, dtype="float64")


def download_artifact(tracking_uri: str, run_id: str, name: str, dst_dir: Path) -> Path | None:
    """Download the top-level artifact `name` of a run into `dst_dir`; None when absent."""
    client = client_for(tracking_uri)
    names = {artifact.path for artifact in client.list_artifacts(run_id)}
    if name not in names:
        return None
    dst_dir.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, str(dst_dir)))


def download_attention(tracking_uri: str, run_id: str, dst_dir: Path) -> Path | None:
    """Download a run's `attention.npz` into `dst_dir`; None when the run has none."""
    return download_artifact(tracking_uri, run_id, ATTENTION_FILE, dst_dir)


def load_attention(tracking_uri: str, run_id: str) -> dict[str, np.ndarray] | None:
    """A run's attention arrays (`layer0_A`, `layer0_refined`, ...) or None when absent."""
    with tempfile.TemporaryDirectory(prefix="awr-attention-") as tmp:
        path = download_attention(tracking_uri, run_id, Path(tmp))
        if path is None:
            return None
        with np.load(path) as archive:
            return {name: np.asarray(archive[name]) for name in archive.files}


def load_ranks(tracking_uri: str, run_id: str) -> UserRanks | None:
    """A run's per-user valid and test ranks (`ranks.npz`), or None for runs logged before
    trials stored them."""
    with tempfile.TemporaryDirectory(prefix="awr-ranks-") as tmp:
        path = download_artifact(tracking_uri, run_id, RANKS_FILE, Path(tmp))
        return None if path is None else UserRanks.load(path)
