"""analysis.tables and analysis.selection: exact cells of Tables 2 and 3 on the fake store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fakestore import NDCG5
from scipy import stats

from analysis.runs import load_trials
from analysis.selection import final_stage, select_by_validation
from analysis.tables import SUMMARY_COLUMNS, TABLE2_CELLS, table2, table3

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.usefixtures("quiet_mlflow"),
]

NUMERIC_COLUMNS = [*TABLE2_CELLS, "variant", *SUMMARY_COLUMNS, "paper", "paper_rel_change_pct"]


@pytest.fixture(scope="module")
def paper_trials(store_uri: str) -> pd.DataFrame:
    return load_trials("paper", store_uri)


def _cell(table: pd.DataFrame, backbone: str, mechanism: str, column: str) -> str:
    row = table[(table["Backbone"] == backbone) & (table["Mechanism"] == mechanism)]
    assert len(row) == 1
    return row.iloc[0][column]


def test_table2_cells(paper_trials: pd.DataFrame) -> None:
    cells = table2(paper_trials).cells
    assert list(cells.columns) == [
        "Backbone",
        "Mechanism",
        *[f"{d} {m}" for d in ("Beauty", "ML-1M", "Anime") for m in ("R@1", "R@5", "N@5")],
    ]
    assert list(zip(cells["Backbone"], cells["Mechanism"], strict=True)) == [
        ("SASRec", "original"),
        ("SASRec", "M1 simple"),
        ("STOSA", "original"),
        ("STOSA", "M4 stochastic"),
    ]
    # Failed run (0.9) and the stage-1 run (0.5, better validation) are both left out.
    assert _cell(cells, "SASRec", "original", "Beauty N@5") == (
        "0.0220 ± 0.0020 (n=3), paper 0.0234"
    )
    assert _cell(cells, "SASRec", "M1 simple", "Beauty N@5") == (
        "0.0260 ± 0.0026 (n=3), +18.2%*, paper 0.0243 (+3.8%)"
    )
    assert _cell(cells, "SASRec", "M1 simple", "Beauty R@1") == (
        "0.0135 ± 0.0014 (n=3), +18.2%*, paper 0.0104 (+7.2%)"
    )
    assert _cell(cells, "SASRec", "M1 simple", "ML-1M N@5") == (
        "0.0648 ± 0.0022 (n=6), +3.7%*†, paper 0.0649 (+5.4%)"
    )
    assert _cell(cells, "STOSA", "M4 stochastic", "Beauty N@5") == (
        "0.0282 ± 0.0010 (n=3), -2.9%*, paper 0.0276 (-3.2%)"
    )
    assert _cell(cells, "SASRec", "M1 simple", "Anime N@5") == (
        "0.2100 ± 0 (n=1), +5.0%, paper 0.2274 (+7.7%)"
    )
    assert _cell(cells, "STOSA", "original", "Anime N@5") == "–"


def test_table2_numbers(paper_trials: pd.DataFrame) -> None:
    numeric = table2(paper_trials).numeric
    assert list(numeric.columns) == NUMERIC_COLUMNS
    row = numeric[
        (numeric["dataset"] == "ml-1m")
        & (numeric["backbone"] == "sasrec")
        & (numeric["mechanism"] == "simple")
        & (numeric["metric"] == "ndcg_5")
    ].iloc[0]
    x = np.array(NDCG5["ml-1m"]["sasrec"]["simple"])
    y = np.array(NDCG5["ml-1m"]["sasrec"]["none"])
    assert row["mean"] == pytest.approx(x.mean())
    assert row["std"] == pytest.approx(x.std(ddof=1))
    assert row["n"] == 6 and row["n_pairs"] == 6
    assert row["rel_change_pct"] == pytest.approx((x.mean() - y.mean()) / y.mean() * 100)
    assert row["p_ttest"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert row["paper"] == 0.0649
    original = numeric[(numeric["mechanism"] == "none")]
    assert original["rel_change_pct"].isna().all() and original["p_ttest"].isna().all()
    single = numeric[(numeric["dataset"] == "anime")]
    assert (single["n"] == 1).all() and single["std"].isna().all()


def test_table3_rows_by_layers(store_uri: str) -> None:
    table = table3(load_trials("layers", store_uri))
    cells = table.cells
    assert list(cells.columns) == ["Dataset", "Layers", "SASRec original", "SASRec M1 simple"]
    assert list(cells["Layers"]) == ["1", "2"]
    assert list(cells["SASRec M1 simple"]) == [
        "0.0245 ± 0.0021 (n=2), +16.7%, paper 0.0243 (+3.8%)",
        "0.0270 ± 0.0028 (n=2), +8.0%, paper 0.0255 (+5.4%)",
    ]
    assert cells["SASRec original"].iloc[1] == "0.0250 ± 0.0014 (n=2), paper 0.0242"
    assert sorted(table.numeric["num_layers"].unique()) == [1, 2]


def test_table2_restricted_to_one_layer(store_uri: str) -> None:
    cells = table2(load_trials("layers", store_uri), num_layers=1).cells
    assert _cell(cells, "SASRec", "original", "Beauty N@5").startswith("0.0210 ± 0.0014 (n=2)")


def _runs(rows: list[tuple]) -> pd.DataFrame:
    columns = ["stage", "mechanism", "config_key", "seed", "best_valid/ndcg_5", "test/ndcg_5"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(dataset="beauty", backbone="sasrec")


def test_selection_uses_validation_never_test() -> None:
    runs = _runs(
        [
            ("1", "none", "a", 1, 0.050, 0.010),
            ("1", "none", "a", 2, 0.052, 0.011),
            ("1", "none", "b", 1, 0.040, 0.090),  # best test, worse validation
            ("1", "simple", "c", 1, 0.030, 0.020),
        ]
    )
    chosen = select_by_validation(runs, ["dataset", "backbone", "mechanism"])
    assert sorted(chosen["config_key"]) == ["a", "a", "c"]


def test_final_stage_prefers_stage_two() -> None:
    two_stages = _runs([("1", "none", "a", 1, 0.9, 0.9), ("2", "none", "b", 1, 0.1, 0.1)])
    assert list(final_stage(two_stages)["stage"]) == ["2"]
    one_stage = _runs([("1", "none", "a", 1, 0.9, 0.9), ("1", "none", "b", 1, 0.1, 0.1)])
    assert len(final_stage(one_stage)) == 2
