"""The report's figures: Figures 2-5 of the paper for one dataset and the per-user forest plot,
drawn into the report folder, each with its title or the reason it was skipped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import figure_data, figures
from analysis.names import (
    BACKBONE_LABELS,
    MECHANISM_LABELS,
    METRIC_LABELS,
    RANK_CUTOFFS,
    dataset_label,
    label,
)
from analysis.report_text import FigureEntry
from analysis.selection import VARIANT
from analysis.tables import Table
from awr.schema import GRAD_NORM, SELECTION_METRIC, TEST, VALID, metric_key

FIGURE_FILES = {
    2: "figure2_ndcg_at_n.png",
    3: "figure3_attention.png",
    4: "figure4_valid_ndcg5.png",
    5: "figure5_grad_norm.png",
}
FOREST_FILE = "forest_per_user.png"


def make_figures(
    tracking_uri: str,
    runs: pd.DataFrame,
    out_dir: Path,
    dataset: str | None = None,
    mechanism: str = "simple",
) -> list[FigureEntry]:
    """Draw Figures 2-5 for one dataset from `runs` (the Table 2 runs); skip those without
    data, saying why."""
    chosen_dataset = figure_data.pick_dataset(runs, dataset)
    if chosen_dataset is None:
        reason = "no finished runs"
        return [FigureEntry(n, f"Figure {n}", None, reason) for n in FIGURE_FILES]
    name = dataset_label(chosen_dataset)
    entries = [_figure2(runs, out_dir, chosen_dataset)]

    maps = figure_data.attention_maps(tracking_uri, runs, chosen_dataset, mechanism)
    title3 = f"attention of the last 15 positions, layer 0, {name}"
    if maps:
        file = FIGURE_FILES[3]
        figures.figure_attention(maps, out_dir / file, f"Figure 3: {title3}")
        note = "Mean over users and heads; original from a `none` run, the other two panels "
        note += f"from a `{mechanism}` run of the same seed."
        entries.append(FigureEntry(3, title3, file, note))
    else:
        why = f"no pair of `none` and `{mechanism}` runs with the same seed and attention.npz"
        entries.append(FigureEntry(3, title3, None, why))

    chosen = figure_data.representatives(runs, chosen_dataset)
    subtitle = f"{name}, smallest seed per mechanism"
    for number, key, draw, title in (
        (
            4,
            metric_key(SELECTION_METRIC, VALID),
            figures.figure_valid_curves,
            "validation NDCG@5 per epoch",
        ),
        (5, GRAD_NORM, figures.figure_grad_norm, "global gradient norm, final 50 epochs"),
    ):
        curves = figure_data.history_curves(tracking_uri, chosen, key)
        if curves:
            draw(curves, out_dir / FIGURE_FILES[number], subtitle)
            entries.append(FigureEntry(number, f"{title}, {subtitle}", FIGURE_FILES[number]))
        else:
            entries.append(FigureEntry(number, title, None, f"no `{key}` history in the runs"))
    return entries


def _figure2(runs: pd.DataFrame, out_dir: Path, dataset: str) -> FigureEntry:
    title = f"test NDCG@N, N = 1..20, {dataset_label(dataset)}"
    columns = [metric_key(f"ndcg_{n}", TEST) for n in RANK_CUTOFFS]
    of_dataset = runs[runs["dataset"] == dataset]
    if not all(c in of_dataset for c in columns) or of_dataset[columns].dropna().empty:
        return FigureEntry(2, title, None, "no run has all of test/ndcg_1 ... test/ndcg_20")
    figures.figure_ndcg_at_n(of_dataset, out_dir / FIGURE_FILES[2], dataset)
    return FigureEntry(2, title, FIGURE_FILES[2], "Mean over seeds; band = ±1 std.")


def make_forest(t2: Table, out_dir: Path) -> str | None:
    """Draw the forest plot of Table 2's per-user comparisons; its file name, None when there
    is none to draw."""
    numeric = t2.numeric
    if "user_rel_pct" not in numeric.columns:
        return None
    rows = numeric[numeric["user_rel_pct"].notna()].copy()
    if rows.empty:
        return None
    several = rows["dataset"].nunique() > 1
    rows["name"] = [
        " ".join(
            part
            for part in (
                dataset_label(r["dataset"]) if several else "",
                label(r["backbone"], BACKBONE_LABELS),
                f"({r[VARIANT]})" if r[VARIANT] else "",
                label(r["mechanism"], MECHANISM_LABELS),
            )
            if part
        )
        for _, r in rows.iterrows()
    ]
    rows["metric_label"] = [label(m, METRIC_LABELS) for m in rows["metric"]]
    title = "Per-user paired change vs the original (test, pooled over seed pairs)"
    figures.figure_forest(rows, out_dir / FOREST_FILE, title)
    return FOREST_FILE
