"""Figures 2-5 as PNG files. Pure: data in, one file out; no pyplot, the Agg canvas only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.names import (
    BACKBONE_LABELS,
    MECHANISM_LABELS,
    RANK_CUTOFFS,
    dataset_label,
    label,
    ordered,
)
from awr.config import MECHANISMS
from awr.schema import TEST, metric_key

DPI = 120
PANEL_WIDTH = 5.0  # inches per line-plot panel
PANEL_HEIGHT = 3.75
HEATMAP_WIDTH = 4.0  # inches per heat-map panel (plus one colour bar column)
HEATMAP_HEIGHT = 3.5
COLORBAR_WIDTH = 1.0
GRAD_NORM_EPOCHS = 50

Curves = Mapping[str, Mapping[str, pd.Series]]  # backbone -> mechanism -> values by epoch


def mechanism_color(mechanism: str) -> str:
    index = MECHANISMS.index(mechanism) if mechanism in MECHANISMS else 9
    return f"C{index}"


def line_figure_size(n_panels: int) -> tuple[float, float]:
    """Figure size in inches of a figure with `n_panels` line-plot panels side by side."""
    return (PANEL_WIDTH * max(n_panels, 1), PANEL_HEIGHT)


def heatmap_figure_size(n_rows: int) -> tuple[float, float]:
    """Figure size in inches of the attention figure with `n_rows` rows of three heat maps."""
    return (3 * HEATMAP_WIDTH + COLORBAR_WIDTH, HEATMAP_HEIGHT * max(n_rows, 1))


def _save(figure: Figure, out_path: Path) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(out_path, dpi=DPI)
    return out_path


def _panels(n: int) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=line_figure_size(n), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, max(n, 1), squeeze=False)[0]
    return figure, list(axes)


def figure_ndcg_at_n(runs: pd.DataFrame, out_path: Path, dataset: str) -> Path:
    """Figure 2: test NDCG@N for N = 1..20 per mechanism (mean over seeds, band = ±1 std),
    one panel per backbone, for one dataset. `runs`: rows of `runs.runs_frame`."""
    columns = [metric_key(f"ndcg_{n}", TEST) for n in RANK_CUTOFFS]
    runs = runs[runs["dataset"] == dataset]
    backbones = ordered(runs["backbone"], tuple(BACKBONE_LABELS))
    figure, axes = _panels(len(backbones))
    cutoffs = np.array(RANK_CUTOFFS)
    for ax, backbone in zip(axes, backbones, strict=False):
        of_backbone = runs[runs["backbone"] == backbone]
        for mechanism in ordered(of_backbone["mechanism"], MECHANISMS):
            values = of_backbone.loc[of_backbone["mechanism"] == mechanism, columns]
            values = values.dropna().to_numpy(dtype=float)
            if not len(values):
                continue
            mean = values.mean(axis=0)
            color = mechanism_color(mechanism)
            name = f"{label(mechanism, MECHANISM_LABELS)} (n={len(values)})"
            ax.plot(cutoffs, mean, marker="o", markersize=3, color=color, label=name)
            if len(values) > 1:
                std = values.std(axis=0, ddof=1)
                ax.fill_between(cutoffs, mean - std, mean + std, color=color, alpha=0.15)
        ax.set_title(f"{label(backbone, BACKBONE_LABELS)} on {dataset_label(dataset)}")
        ax.set_xlabel("N (ranking cut-off)")
        ax.set_ylabel("test NDCG@N (mean over seeds)")
        ax.set_xticks([1, 5, 10, 15, 20])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(f"Figure 2: NDCG@N per mechanism, {dataset_label(dataset)}")
    return _save(figure, out_path)


def mean_attention(weights: np.ndarray) -> np.ndarray:
    """Average (users, heads, 15, 15) attention weights over users and heads -> (15, 15)."""
    array = np.asarray(weights, dtype=float)
    if array.ndim != 4:
        raise ValueError(f"expected (users, heads, L, L) attention weights, got {array.shape}")
    return array.mean(axis=(0, 1))


def figure_attention(
    maps: Mapping[str, Mapping[str, np.ndarray]], out_path: Path, title: str
) -> Path:
    """Figure 3: heat maps of the last positions' attention, one row per backbone and one panel
    per entry of `maps[backbone]` (e.g. original A, reworked A, refined A'), each a 2-D array.
    All panels share one colour scale so they can be compared."""
    rows = list(maps)
    figure = Figure(figsize=heatmap_figure_size(len(rows)), dpi=DPI, layout="constrained")
    axes = figure.subplots(max(len(rows), 1), 3, squeeze=False)
    top = max((float(np.max(a)) for panels in maps.values() for a in panels.values()), default=1)
    image = None
    for row_axes, backbone in zip(axes, rows, strict=False):
        for ax, (name, matrix) in zip(row_axes, maps[backbone].items(), strict=False):
            size = matrix.shape[0]
            image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=top, origin="upper")
            ticks = [0, size // 2, size - 1]
            names = [f"t-{size - 1 - t}" if t < size - 1 else "t" for t in ticks]
            ax.set_xticks(ticks, names)
            ax.set_yticks(ticks, names)
            ax.set_xlabel("key position")
            ax.set_ylabel("query position")
            ax.set_title(f"{label(backbone, BACKBONE_LABELS)}: {name}", fontsize="medium")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="attention weight")
    figure.suptitle(title)
    return _save(figure, out_path)


def _curve_panels(
    curves: Curves, title: str, xlabel: str, ylabel: str, last: int | None = None
) -> Figure:
    backbones = ordered(curves, tuple(BACKBONE_LABELS))
    figure, axes = _panels(len(backbones))
    for ax, backbone in zip(axes, backbones, strict=False):
        for mechanism in ordered(curves[backbone], MECHANISMS):
            series = curves[backbone][mechanism].dropna().sort_index()
            if series.empty:
                continue
            x = series.index.to_numpy()
            if last is not None:
                series = series.iloc[-last:]
                x = series.index.to_numpy() - series.index[-1]
            ax.plot(
                x,
                series.to_numpy(),
                color=mechanism_color(mechanism),
                label=label(mechanism, MECHANISM_LABELS),
                linewidth=1.2,
            )
        ax.set_title(label(backbone, BACKBONE_LABELS))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def figure_valid_curves(curves: Curves, out_path: Path, subtitle: str) -> Path:
    """Figure 4: validation NDCG@5 per epoch, one line per mechanism, one panel per backbone."""
    figure = _curve_panels(
        curves, f"Figure 4: validation NDCG@5 per epoch, {subtitle}", "epoch", "validation NDCG@5"
    )
    return _save(figure, out_path)


def figure_grad_norm(
    curves: Curves, out_path: Path, subtitle: str, last: int = GRAD_NORM_EPOCHS
) -> Path:
    """Figure 5: global gradient norm over the final `last` epochs before early stopping,
    aligned on the last epoch (x = 0), one line per mechanism, one panel per backbone."""
    figure = _curve_panels(
        curves,
        f"Figure 5: gradient norm, final {last} epochs, {subtitle}",
        "epoch relative to the last epoch (0 = stop)",
        "global gradient norm",
        last=last,
    )
    return _save(figure, out_path)


VERDICT_COLORS = {"better": "tab:green", "worse": "tab:red"}
FOREST_ROW_HEIGHT = 0.32  # inches per comparison row


def figure_forest(rows: pd.DataFrame, out_path: Path, title: str) -> Path:
    """Forest plot of per-user paired comparisons: one row per comparison (`name`), one panel
    per metric (`metric_label`), the relative change `user_rel_pct` with its CI
    (`user_rel_low_pct`, `user_rel_high_pct`) as a bar, a line at zero, coloured by `verdict`
    (green better, red worse, grey no detectable difference)."""
    names = list(dict.fromkeys(rows["name"]))
    metrics = list(dict.fromkeys(rows["metric_label"]))
    height = 1.2 + FOREST_ROW_HEIGHT * max(len(names), 1)
    figure = Figure(figsize=(2.0 + 3.2 * max(len(metrics), 1), height), dpi=DPI)
    figure.set_layout_engine("constrained")
    axes = figure.subplots(1, max(len(metrics), 1), squeeze=False, sharey=True)[0]
    position = {name: len(names) - 1 - i for i, name in enumerate(names)}
    for ax, metric in zip(axes, metrics, strict=False):
        of_metric = rows[rows["metric_label"] == metric]
        for _, row in of_metric.iterrows():
            y = position[row["name"]]
            color = VERDICT_COLORS.get(row["verdict"], "tab:gray")
            low, high = row["user_rel_low_pct"], row["user_rel_high_pct"]
            ax.plot([low, high], [y, y], color=color, linewidth=2)
            ax.plot([row["user_rel_pct"]], [y], marker="o", color=color, markersize=5)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(metric)
        ax.set_xlabel("change vs original, % (95% CI)")
        ax.set_ylim(-0.7, len(names) - 0.3)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(list(position.values()), list(position))
    figure.suptitle(title)
    return _save(figure, out_path)
