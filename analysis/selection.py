"""Which finished runs a table or figure uses: the final stage, a settings variant per block,
and one config per cell chosen by validation only (never by test metrics).

A variant is the value of the params that a sweep varies within one dataset x backbone besides
the mechanism's own (e.g. `stosa_released_code=True`): tables give each variant its own block
of rows, compared with the original of the same variant, never across variants."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from analysis.names import (
    ORIGINAL,
    ordered_datasets,
)
from analysis.runs import EXECUTION_PARAMS, MECHANISM_PARAMS
from awr.config import BACKBONES, MECHANISMS, field_types
from awr.schema import SELECTION_KEY

FINAL_STAGE = "2"
VARIANT = "variant"
BLOCK_GROUP: tuple[str, ...] = ("dataset", "backbone")


def final_stage(runs: pd.DataFrame) -> pd.DataFrame:
    """Stage-2 runs when the sweep has several stages; all runs when it has only one."""
    stages = set(runs["stage"].dropna().astype(str))
    if len(stages) > 1 and FINAL_STAGE in stages:
        return runs[runs["stage"].astype(str) == FINAL_STAGE].reset_index(drop=True)
    return runs.reset_index(drop=True)


def variant_labels(runs: pd.DataFrame, exclude: Sequence[str] = ()) -> pd.Series:
    """Each run's variant, `name=value, ...` over the params that take more than one value
    among the runs of its dataset x backbone ('' where none does). The mechanism's own params,
    execution-only ones, the seed and `exclude` (a table's own axes, e.g. num_layers) do not
    count."""
    skip = {*EXECUTION_PARAMS, *MECHANISM_PARAMS, *BLOCK_GROUP, *exclude}
    params = [name for name in field_types() if name in runs.columns and name not in skip]
    labels = pd.Series("", index=runs.index, dtype=object)
    if runs.empty:
        return labels
    for _, group in runs.groupby(list(BLOCK_GROUP), dropna=False):
        varied = [name for name in params if group[name].astype(str).nunique() > 1]
        if varied:
            texts = (
                group[varied]
                .astype(str)
                .apply(lambda row, names=varied: ", ".join(f"{n}={row[n]}" for n in names), axis=1)
            )
            labels[group.index] = texts
    return labels


def with_variants(runs: pd.DataFrame, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """`runs` with a `variant` column (see `variant_labels`)."""
    return runs.assign(**{VARIANT: variant_labels(runs, exclude)})


def one_variant(runs: pd.DataFrame, metric: str = SELECTION_KEY) -> pd.DataFrame:
    """Per dataset x backbone, the runs of a single variant: the one whose original has the
    best mean validation `metric` (a variant without original only when none has one); for
    figures, which draw one block per backbone. Test metrics are never looked at."""
    if runs.empty or VARIANT not in runs.columns:
        return runs.reset_index(drop=True)
    values = runs[metric] if metric in runs.columns else pd.Series(math.nan, index=runs.index)
    scored = runs.assign(
        _original=runs["mechanism"] == ORIGINAL,
        _score=values.where(runs["mechanism"] == ORIGINAL),
    )
    keys = [*BLOCK_GROUP, VARIANT]
    scores = scored.groupby(keys, dropna=False).agg(
        has=("_original", "any"), score=("_score", "mean")
    )
    scores = scores.reset_index().fillna({"score": -math.inf})
    scores = scores.sort_values(
        [*BLOCK_GROUP, "has", "score", VARIANT], ascending=[True, True, False, False, True]
    )
    chosen = scores.drop_duplicates(list(BLOCK_GROUP), keep="first")[keys]
    return runs.merge(chosen, on=keys, how="inner")


def select_by_validation(
    runs: pd.DataFrame, cell_columns: Sequence[str], metric: str = SELECTION_KEY
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
    """Sort by dataset (paper order), `extra` columns, backbone, variant and mechanism (paper
    order)."""
    orders = {
        "dataset": ordered_datasets(frame["dataset"]) if "dataset" in frame.columns else [],
        "backbone": list(BACKBONES),
        "mechanism": list(MECHANISMS),
    }
    keys: list[str] = []
    ranked = frame.copy()
    for column in ("dataset", *extra, "backbone", VARIANT, "mechanism"):
        if column not in frame.columns:
            continue
        if column in orders:
            rank = {value: i for i, value in enumerate(orders[column])}
            ranked[f"_rank_{column}"] = frame[column].map(lambda v, r=rank: r.get(v, len(r)))
            keys.append(f"_rank_{column}")
        keys.append(column)
    ranked = ranked.sort_values(keys, kind="stable") if keys else ranked
    return ranked.drop(columns=[k for k in keys if k.startswith("_rank_")]).reset_index(drop=True)
