"""analysis.figures and analysis.figure_data: PNGs of the expected pixel size, data fetched
from the fake store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakestore import EPOCHS, attention_arrays
from matplotlib import image

from analysis import figure_data
from analysis.figures import (
    DPI,
    figure_attention,
    figure_grad_norm,
    figure_ndcg_at_n,
    figure_valid_curves,
    heatmap_figure_size,
    line_figure_size,
    mean_attention,
)
from analysis.runs import load_trials
from analysis.tables import TABLE2_CELLS, table_runs

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.usefixtures("quiet_mlflow"),
]


@pytest.fixture(scope="module")
def runs(store_uri: str) -> pd.DataFrame:
    return table_runs(load_trials("paper", store_uri), TABLE2_CELLS)


def _assert_png(path: Path, inches: tuple[float, float]) -> None:
    pixels = image.imread(path)
    assert pixels.shape[:2] == (round(inches[1] * DPI), round(inches[0] * DPI))
    assert float(pixels[..., :3].std()) > 0.01  # something is drawn


def test_figure2_ndcg_at_n(runs: pd.DataFrame, tmp_path: Path) -> None:
    path = figure_ndcg_at_n(runs, tmp_path / "f2.png", "beauty")
    _assert_png(path, line_figure_size(2))


def test_figure3_attention_from_the_store(
    store_uri: str, runs: pd.DataFrame, tmp_path: Path
) -> None:
    maps = figure_data.attention_maps(store_uri, runs, "beauty", "simple")
    assert list(maps) == ["sasrec"]  # stosa has no `simple` run here
    panels = maps["sasrec"]
    assert list(panels) == ["original A", "M1 simple: A", "M1 simple: refined A'"]
    expected = attention_arrays("simple", 1)["layer0_refined"].mean(axis=(0, 1))
    np.testing.assert_allclose(panels["M1 simple: refined A'"], expected, rtol=1e-6)
    path = figure_attention(maps, tmp_path / "f3.png", "Figure 3: Beauty")
    _assert_png(path, heatmap_figure_size(1))


def test_mean_attention_checks_its_shape() -> None:
    assert mean_attention(np.ones((3, 2, 15, 15))).shape == (15, 15)
    with pytest.raises(ValueError, match="users, heads"):
        mean_attention(np.ones((15, 15)))


def test_figures_4_and_5_from_histories(store_uri: str, runs: pd.DataFrame, tmp_path: Path) -> None:
    chosen = figure_data.representatives(runs, "beauty")
    assert {b: sorted(m) for b, m in chosen.items()} == {
        "sasrec": ["none", "simple"],
        "stosa": ["none", "stochastic"],
    }
    assert all(row["seed"] == 1 for m in chosen.values() for row in m.values())
    valid = figure_data.history_curves(store_uri, chosen, "valid/ndcg_5")
    assert len(valid["sasrec"]["simple"]) == EPOCHS
    _assert_png(figure_valid_curves(valid, tmp_path / "f4.png", "Beauty"), line_figure_size(2))
    grad = figure_data.history_curves(store_uri, chosen, "grad_norm")
    _assert_png(figure_grad_norm(grad, tmp_path / "f5.png", "Beauty"), line_figure_size(2))
    assert figure_data.history_curves(store_uri, chosen, "no/such_metric") == {}


def test_pick_dataset_prefers_beauty(runs: pd.DataFrame) -> None:
    assert figure_data.pick_dataset(runs) == "beauty"
    assert figure_data.pick_dataset(runs, "ML1M") == "ml-1m"
    assert figure_data.pick_dataset(runs[runs["dataset"] == "anime"]) == "anime"
    assert figure_data.pick_dataset(runs.iloc[0:0]) is None
