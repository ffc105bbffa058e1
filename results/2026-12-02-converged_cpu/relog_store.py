"""Log a sweep folder's finished trials into its MLflow database again from their artifacts.

This folder's first `mlflow.db` was lost with a workspace reset (see README.md) while every
trial's artifacts (`mlartifacts/<run>/artifacts/`: config.json, epochs.csv, ranks.npz,
attention.npz) and the Ray trial folders survived. For each artifact folder whose run the
database does not hold, this writes the run a sweep writes, through awr.tracking's own
TrialRun: the trial tags (sweep, stage 2, dataset, backbone, mechanism, seed, the Ray trial id
read from the Ray folder, a parent per backbone), the config as params, every epoch of
epochs.csv, the final metrics and the artifacts. What the artifacts do not hold: the code
commit (tagged `unknown`), each epoch's evaluation seconds (0) and the trial's wall seconds
(the sum of its epochs' training seconds).

    python results/2026-12-02-converged_cpu/relog_store.py STORE SWEEP
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from awr.config import BACKBONES, TrialConfig, from_dict
from awr.eval.ranks import RANKS_FILE, UserRanks
from awr.models.registry import build_model
from awr.schema import CSV, FINISHED, metric_key
from awr.store import client_for, default_tracking_uri, search_all
from awr.sweep.naming import trial_run_name
from awr.tracking import TrialRun, open_parent, parent_tags, trial_run_tags
from awr.train.trainer import EpochRecord
from awr.trial import TrialResult, load_data

VARIED = ("mechanism", "seed", "stosa_released_code")


def history(epochs: pd.DataFrame, names: list[str]) -> list[EpochRecord]:
    """The trial's EpochRecords from its epochs.csv; `names`: its validation metrics."""
    records, best, best_epoch = [], -np.inf, 0
    for row in epochs.to_dict("records"):
        valid = {name: float(row[metric_key(name, CSV)]) for name in names}
        if valid["ndcg_5"] > best:
            best, best_epoch = valid["ndcg_5"], int(row["epoch"])
        records.append(
            EpochRecord(
                epoch=int(row["epoch"]), train_loss=float(row["train_loss"]),
                grad_norm=float(row["grad_norm"]), epoch_seconds=float(row["epoch_seconds"]),
                eval_seconds=0.0, valid=valid, best_epoch=best_epoch, best_valid_ndcg_5=best,
            )
        )  # fmt: skip
    return records


def result_of(artifacts: Path, config: TrialConfig, num_items: int, checksum: str) -> TrialResult:
    ranks = UserRanks.load(artifacts / RANKS_FILE)
    test = ranks.metrics("test")
    records = history(pd.read_csv(artifacts / "epochs.csv"), list(test))
    best = records[-1].best_epoch
    attention_file = artifacts / "attention.npz"
    attention = dict(np.load(attention_file)) if attention_file.exists() else {}
    model = build_model(config, num_items)
    return TrialResult(
        config=config, best_epoch=best, epochs_run=records[-1].epoch,
        valid=records[best - 1].valid, test=test,
        num_params=sum(p.numel() for p in model.parameters()),
        seconds=sum(r.epoch_seconds for r in records), data_checksum=checksum,
        history=records, attention=attention, ranks=ranks,
    )  # fmt: skip


def ray_trials(store: Path, sweep: str, backbone: str) -> dict[tuple, tuple[str, dict]]:
    """(mechanism, seed, stosa_released_code) -> (Ray trial id, the values Tune varied), from
    the unit's Ray folder (a trial's folder is named by its trial id)."""
    found = {}
    for params in store.glob(f"ray/{sweep}-stage2-*-{backbone}-*/*/params.json"):
        varied = json.loads(params.read_text())
        found[tuple(varied.get(k, False) for k in VARIED)] = (params.parent.name, varied)
    return found


def main(store: Path, sweep: str) -> None:
    uri = default_tracking_uri(store)
    client = client_for(uri)
    experiment = client.get_experiment_by_name(sweep).experiment_id
    runs = search_all(client, experiment, "")
    known = {run.info.run_id for run in runs}
    checksum = next(r.data.tags["data_checksum"] for r in runs if "data_checksum" in r.data.tags)
    num_items: dict[str, int] = {}
    parents: dict[str, str] = {}
    trials = {backbone: ray_trials(store, sweep, backbone) for backbone in BACKBONES}
    logged = 0
    for artifacts in sorted(store.glob("mlartifacts/*/artifacts")):
        if artifacts.parent.name in known or not (artifacts / RANKS_FILE).exists():
            continue
        config = from_dict(json.loads((artifacts / "config.json").read_text()))
        if config.dataset not in num_items:
            num_items[config.dataset] = load_data(config).num_items
        result = result_of(artifacts, config, num_items[config.dataset], checksum)
        values = result.config.to_dict()
        backbone = values["backbone"]
        if backbone not in parents:
            tags = parent_tags(sweep, 2, values["dataset"], backbone)
            parents[backbone] = open_parent(client, experiment, tags, {})
        trial_id, varied = trials[backbone][tuple(values[k] for k in VARIED)]
        tags = trial_run_tags(sweep, 2, values, "unknown", checksum, trial_id, parents[backbone])
        name = trial_run_name(values, varied, 2)
        run = TrialRun.attach(uri, experiment, tags, values, run_name=name)
        for record in result.history:
            run.log_epoch(record)
        run.log_result(result)
        run.end(FINISHED)
        logged += 1
        print(
            f"{name}: {result.epochs_run} epochs, best {result.best_epoch}, "
            f"test ndcg_5 {result.test['ndcg_5']:.4f}"
        )
    for run_id in parents.values():
        client.set_terminated(run_id, FINISHED)
    print(f"logged {logged} trials again from their artifacts")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), sys.argv[2])
