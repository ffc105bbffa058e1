"""Fetch what Figures 3-5 need from MLflow: representative runs, metric histories, attention.

Representative run of a cell = its run with the smallest seed (a rule that never looks at any
metric). Everything here returns None or leaves a cell out when the data is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures import mean_attention
from analysis.names import DATASET_ORDER, MECHANISM_LABELS, ORIGINAL, canonical_dataset, label
from analysis.runs import load_attention, metric_history


def pick_dataset(runs: pd.DataFrame, preferred: str | None = None) -> str | None:
    """`preferred` when present, else Beauty, else the first dataset in paper order."""
    present = list(dict.fromkeys(runs["dataset"].dropna()))
    if not present:
        return None
    wanted = [preferred] if preferred else []
    wanted += list(DATASET_ORDER)
    for name in wanted:
        for dataset in present:
            if dataset == name or canonical_dataset(dataset) == canonical_dataset(name):
                return dataset
    return sorted(present)[0]


def representatives(runs: pd.DataFrame, dataset: str) -> dict[str, dict[str, pd.Series]]:
    """backbone -> mechanism -> the run (a row) with the smallest seed, for one dataset."""
    rows = runs[runs["dataset"] == dataset].sort_values(["seed", "run_id"])
    chosen: dict[str, dict[str, pd.Series]] = {}
    for _, row in rows.iterrows():
        chosen.setdefault(row["backbone"], {}).setdefault(row["mechanism"], row)
    return chosen


def history_curves(
    tracking_uri: str, chosen: dict[str, dict[str, pd.Series]], key: str
) -> dict[str, dict[str, pd.Series]]:
    """backbone -> mechanism -> the history of metric `key`; cells without history left out."""
    curves: dict[str, dict[str, pd.Series]] = {}
    for backbone, by_mechanism in chosen.items():
        for mechanism, row in by_mechanism.items():
            series = metric_history(tracking_uri, row["run_id"], key)
            if not series.empty:
                curves.setdefault(backbone, {})[mechanism] = series
    return curves


def attention_maps(
    tracking_uri: str, runs: pd.DataFrame, dataset: str, mechanism: str = "simple", layer: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """backbone -> {panel title: (15, 15) mean attention} with the original's A, the reworked
    model's A and its refined A', from the smallest seed where both runs have `attention.npz`."""
    maps: dict[str, dict[str, np.ndarray]] = {}
    rows = runs[runs["dataset"] == dataset]
    for backbone in dict.fromkeys(rows["backbone"]):
        of_backbone = rows[rows["backbone"] == backbone]
        original = of_backbone[of_backbone["mechanism"] == ORIGINAL].sort_values("seed")
        reworked = of_backbone[of_backbone["mechanism"] == mechanism]
        for _, base in original.iterrows():
            match = reworked[reworked["seed"] == base["seed"]]
            if match.empty:
                continue
            base_arrays = load_attention(tracking_uri, base["run_id"])
            other_arrays = load_attention(tracking_uri, match.iloc[0]["run_id"])
            keys = (f"layer{layer}_A", f"layer{layer}_refined")
            if base_arrays is None or other_arrays is None or keys[0] not in base_arrays:
                continue
            if not all(k in other_arrays for k in keys):
                continue
            name = label(mechanism, MECHANISM_LABELS)
            maps[backbone] = {
                "original A": mean_attention(base_arrays[keys[0]]),
                f"{name}: A": mean_attention(other_arrays[keys[0]]),
                f"{name}: refined A'": mean_attention(other_arrays[keys[1]]),
            }
            break
    return maps
