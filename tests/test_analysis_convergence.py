"""The training-to-convergence table: hand-computed medians, budget hits and costs."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.convergence import (
    EPOCH_COST_KEYS,
    convergence_cells,
    convergence_summary,
    convergence_table,
    trial_cost,
)
from analysis.selection import VARIANT


def run(run_id: str, mechanism: str, best: int, epochs: int, variant: str = "") -> dict:
    return {
        "run_id": run_id, "dataset": "ml-1m", "backbone": "sasrec", "mechanism": mechanism,
        VARIANT: variant, "best_epoch": float(best), "epochs_run": float(epochs),
        "max_epochs": 50, "patience": 20,
    }  # fmt: skip


def test_cells_count_budget_hits_and_cost_per_trial_and_epoch() -> None:
    runs = pd.DataFrame(
        [
            run("b", "simple", 5, 25),
            run("a1", "none", 10, 30),
            run("a2", "none", 30, 50),  # ran all 50 epochs: stopped by the budget
        ]
    )
    cost = {"a1": 60.0, "a2": 150.0, "b": 50.0}
    table = convergence_table(runs, ("dataset", "backbone", "mechanism"), cost.__getitem__)
    assert list(table["mechanism"]) == ["none", "simple"]  # paper order, not input order
    none, simple = table.iloc[0], table.iloc[1]
    assert none["trials"] == 2 and none["best_epoch_median"] == 20.0
    assert (none["best_epoch_min"], none["best_epoch_max"]) == (10, 30)
    assert none["epochs_run_median"] == 40.0 and none["hit_budget"] == 1
    assert none["train_minutes_median"] == pytest.approx((1.0 + 2.5) / 2)
    assert none["seconds_per_epoch_median"] == pytest.approx((60 / 30 + 150 / 50) / 2)
    assert simple["hit_budget"] == 0 and simple["seconds_per_epoch_median"] == 2.0
    assert convergence_summary(table) == (
        "1 of 3 trials ran the whole budget of 50 epochs (stopped by the budget, not by "
        "patience); best validation epochs range from 5 to 30."
    )
    cells = convergence_cells(table)
    assert "Dataset" not in cells and "Settings" not in cells  # neither varies
    assert list(cells.iloc[0])[:4] == ["SASRec", "original", 2, "20 [10-30]"]
    assert cells.iloc[0]["Ran the budget"] == "1 of 2"


def test_variants_are_their_own_cells() -> None:
    runs = pd.DataFrame(
        [run("x", "none", 10, 30, "stosa_released_code=False"),
         run("y", "none", 12, 32, "stosa_released_code=True")]
    )  # fmt: skip
    table = convergence_table(runs, ("dataset", "backbone", "mechanism"), lambda _: 30.0)
    assert list(table[VARIANT]) == ["stosa_released_code=False", "stosa_released_code=True"]
    assert list(convergence_cells(table)["Settings"]) == list(table[VARIANT])


def test_cost_sums_the_logged_training_and_validation_seconds() -> None:
    assert EPOCH_COST_KEYS == ("epoch_seconds", "eval_seconds")
    histories = {
        ("r", "epoch_seconds"): pd.Series([1.0, 2.0], index=[1, 2]),
        ("r", "eval_seconds"): pd.Series([0.25, 0.25], index=[1, 2]),
    }

    def history(run_id: str, key: str) -> pd.Series:
        return histories.get((run_id, key), pd.Series(dtype="float64"))

    cost_of = trial_cost(history)
    assert cost_of("r") == 3.5 and cost_of("none logged") == 0.0


def test_runs_without_epoch_counts_give_an_empty_table() -> None:
    runs = pd.DataFrame([run("a", "none", 10, 30)]).drop(columns="best_epoch")
    table = convergence_table(runs, ("dataset", "backbone", "mechanism"), lambda _: 1.0)
    assert table.empty and "trials" in table.columns
