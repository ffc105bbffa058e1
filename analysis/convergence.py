"""Training to convergence, per cell of a table: where each trial's best validation epoch fell,
whether patience or the epoch budget ended it, and what its training cost.

A trial that ran all `max_epochs` epochs was stopped by the budget, not by patience: its best
epoch may still have been ahead (not converged). Cost is the sum of the per-epoch training and
validation seconds the trial logged, so a trial resumed across sessions counts only the time
it computed, not the hours it waited."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from analysis.names import BACKBONE_LABELS, MECHANISM_LABELS, dataset_label, label
from analysis.selection import VARIANT, sort_cells
from awr.schema import EPOCH_SCALARS

EPOCH_COST_KEYS: tuple[str, ...] = tuple(key for key in EPOCH_SCALARS if key.endswith("_seconds"))
CONVERGENCE_COLUMNS: tuple[str, ...] = (
    "trials",
    "best_epoch_median",
    "best_epoch_min",
    "best_epoch_max",
    "epochs_run_median",
    "max_epochs",
    "patience",
    "hit_budget",
    "train_minutes_median",
    "seconds_per_epoch_median",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("run_id", "best_epoch", "epochs_run", "max_epochs", "patience")
CostOf = Callable[[str], float]  # run id -> seconds of training and validation it computed


def trial_cost(history: Callable[[str, str], pd.Series]) -> CostOf:
    """A run's cost from its per-epoch histories (`history(run_id, key)`: values by epoch)."""

    def cost_of(run_id: str) -> float:
        return float(sum(history(run_id, key).sum() for key in EPOCH_COST_KEYS))

    return cost_of


def convergence_table(
    runs: pd.DataFrame, cell_columns: Sequence[str], cost_of: CostOf
) -> pd.DataFrame:
    """One row per cell (`cell_columns` and the variant) of finished `runs`: the trials' best
    epochs (median, min, max), epochs run, the budget and patience, how many ran the whole
    budget, and the median cost per trial (minutes) and per epoch (seconds). Empty when the runs
    did not log their epochs (a store without `best_epoch`, `epochs_run`)."""
    keys = [*cell_columns, VARIANT] if VARIANT in runs.columns else list(cell_columns)
    if runs.empty or not set(REQUIRED_COLUMNS) <= set(runs.columns):
        return pd.DataFrame(columns=[*keys, *CONVERGENCE_COLUMNS])
    costs = runs.assign(_cost=[cost_of(run_id) for run_id in runs["run_id"]])
    rows = []
    for cell, group in costs.groupby(keys, sort=False, dropna=False):
        cell = cell if isinstance(cell, tuple) else (cell,)
        best = group["best_epoch"].astype(float)
        epochs = group["epochs_run"].astype(float)
        rows.append(
            {
                **dict(zip(keys, cell, strict=True)),
                "trials": len(group),
                "best_epoch_median": float(best.median()),
                "best_epoch_min": int(best.min()),
                "best_epoch_max": int(best.max()),
                "epochs_run_median": float(epochs.median()),
                "max_epochs": int(group["max_epochs"].max()),
                "patience": int(group["patience"].max()),
                "hit_budget": int((epochs >= group["max_epochs"].astype(float)).sum()),
                "train_minutes_median": float((group["_cost"] / 60).median()),
                "seconds_per_epoch_median": float((group["_cost"] / epochs).median()),
            }
        )
    return sort_cells(pd.DataFrame(rows, columns=[*keys, *CONVERGENCE_COLUMNS]))


def convergence_summary(table: pd.DataFrame) -> str:
    """One sentence: how many trials ran their whole budget and the range of best epochs."""
    trials = int(table["trials"].sum())
    hit = int(table["hit_budget"].sum())
    budgets = sorted(set(table["max_epochs"]))
    budget = " / ".join(str(b) for b in budgets)
    return (
        f"{hit} of {trials} trials ran the whole budget of {budget} epochs (stopped by the "
        f"budget, not by patience); best validation epochs range from "
        f"{int(table['best_epoch_min'].min())} to {int(table['best_epoch_max'].max())}."
    )


def convergence_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings: labels for backbone and mechanism, the best epochs as
    `median [min-max]`; dataset and variant columns only where they vary."""
    cells = pd.DataFrame(
        {
            "Dataset": [dataset_label(d) for d in table["dataset"]],
            "Backbone": [label(b, BACKBONE_LABELS) for b in table["backbone"]],
            "Settings": list(table[VARIANT]) if VARIANT in table.columns else "",
            "Mechanism": [label(m, MECHANISM_LABELS) for m in table["mechanism"]],
            "Trials": table["trials"].astype(int),
            "Best epoch, median [range]": [
                f"{r.best_epoch_median:g} [{r.best_epoch_min}-{r.best_epoch_max}]"
                for r in table.itertuples()
            ],
            "Epochs run (median)": [f"{e:g}" for e in table["epochs_run_median"]],
            "Ran the budget": [
                f"{h} of {n}" for h, n in zip(table["hit_budget"], table["trials"], strict=True)
            ],
            "Minutes per trial": [f"{m:.1f}" for m in table["train_minutes_median"]],
            "Seconds per epoch": [f"{s:.2f}" for s in table["seconds_per_epoch_median"]],
        }
    )
    if table["dataset"].nunique() < 2:
        cells = cells.drop(columns="Dataset")
    if VARIANT not in table.columns or not (table[VARIANT].astype(str) != "").any():
        cells = cells.drop(columns="Settings")
    return cells
