"""Which finished runs a table or figure uses: the final stage, and one config per cell chosen by
validation only (never by test metrics)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from analysis.names import BACKBONE_ORDER, MECHANISM_ORDER, SELECTION_METRIC, ordered_datasets

FINAL_STAGE = "2"


def final_stage(runs: pd.DataFrame) -> pd.DataFrame:
    """Stage-2 runs when the sweep has several stages; all runs when it has only one."""
    stages = set(runs["stage"].dropna().astype(str))
    if len(stages) > 1 and FINAL_STAGE in stages:
        return runs[runs["stage"].astype(str) == FINAL_STAGE].reset_index(drop=True)
    return runs.reset_index(drop=True)


def select_by_validation(
    runs: pd.DataFrame, cell_columns: Sequence[str], metric: str = SELECTION_METRIC
) -> pd.DataFrame:
    """Keep, in each cell, the runs of the config with the highest mean validation `metric`.

    A cell is a combination of `cell_columns` (e.g. dataset, backbone, mechanism); a config is a
    `config_key` (all params but seed and execution-only ones). Ties go to the config with more
    seeds, then to the smaller key, so the choice is deterministic. A cell with one config keeps
    all its runs. Test metrics are never looked at.
    """
    if runs.empty:
        return runs.reset_index(drop=True)
    scored = runs if metric in runs.columns else runs.assign(**{metric: math.nan})
    scores = (
        scored.groupby([*cell_columns, "config_key"], dropna=False)[metric]
        .agg(["mean", "size"])
        .reset_index()
    )
    scores["mean"] = scores["mean"].fillna(-math.inf)
    scores = scores.sort_values(
        [*cell_columns, "mean", "size", "config_key"],
        ascending=[*([True] * len(cell_columns)), False, False, True],
    )
    chosen = scores.drop_duplicates(list(cell_columns), keep="first")
    keep = chosen[[*cell_columns, "config_key"]]
    return runs.merge(keep, on=[*cell_columns, "config_key"], how="inner")


def sort_cells(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Sort by dataset (paper order), `extra` columns, backbone and mechanism (paper order)."""
    orders = {
        "dataset": ordered_datasets(frame["dataset"]) if "dataset" in frame.columns else [],
        "backbone": list(BACKBONE_ORDER),
        "mechanism": list(MECHANISM_ORDER),
    }
    keys: list[str] = []
    ranked = frame.copy()
    for column in ("dataset", *extra, "backbone", "mechanism"):
        if column not in frame.columns:
            continue
        if column in orders:
            rank = {value: i for i, value in enumerate(orders[column])}
            ranked[f"_rank_{column}"] = frame[column].map(lambda v, r=rank: r.get(v, len(r)))
            keys.append(f"_rank_{column}")
        keys.append(column)
    ranked = ranked.sort_values(keys, kind="stable") if keys else ranked
    return ranked.drop(columns=[k for k in keys if k.startswith("_rank_")]).reset_index(drop=True)
