"""One row per finished trial of a sweep folder, read from the trials' own MLflow artifacts
(config.json, epochs.csv, ranks.npz) without the MLflow database:

    cd results/2026-12-02-converged_cpu
    python interim_table.py store/converged_cpu interim_trials.csv

The best epoch is the first epoch of the highest validation NDCG@5 (the trainer's rule: a
later epoch must improve on it); test metrics come from the per-user test ranks logged at that
epoch's state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from awr.eval.ranks import RANKS_FILE, UserRanks


def trial_row(artifacts: Path) -> dict:
    config = json.loads((artifacts / "config.json").read_text())
    epochs = pd.read_csv(artifacts / "epochs.csv")
    test = UserRanks.load(artifacts / RANKS_FILE).metrics("test")
    return {
        "backbone": config["backbone"],
        "stosa_released_code": config["stosa_released_code"],
        "mechanism": config["mechanism"],
        "seed": config["seed"],
        "best_epoch": int(epochs.loc[epochs["valid_ndcg_5"].idxmax(), "epoch"]),
        "epochs_run": int(epochs["epoch"].max()),
        "minutes": round(epochs["epoch_seconds"].sum() / 60, 1),
        "valid_ndcg_5": round(epochs["valid_ndcg_5"].max(), 4),
        "test_ndcg_5": round(test["ndcg_5"], 4),
        "test_recall_5": round(test["recall_5"], 4),
        "test_recall_1": round(test["recall_1"], 4),
        "run_id": artifacts.parent.name,
    }


def main(store: Path, out: Path) -> None:
    trials = [
        trial_row(artifacts)
        for artifacts in sorted(store.glob("mlartifacts/*/artifacts"))
        if (artifacts / "config.json").exists() and (artifacts / RANKS_FILE).exists()
    ]
    table = pd.DataFrame(trials).sort_values(
        ["backbone", "stosa_released_code", "mechanism", "seed"]
    )
    table.to_csv(out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
