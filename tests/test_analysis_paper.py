"""analysis.paper: the paper's Tables 2 and 3 as data (SPEC section 6)."""

from __future__ import annotations

from analysis.paper import (
    ARXIV_ID,
    TABLE2_SOURCE,
    TABLE3_SOURCE,
    table2_frame,
    table2_value,
    table3_frame,
    table3_value,
)


def test_table2_has_every_printed_cell() -> None:
    frame = table2_frame()
    assert len(frame) == 9 * 9  # 9 rows, 3 datasets x 3 metrics
    assert table2_value("sasrec", "none", "beauty", "recall_1") == 0.0097
    assert table2_value("sasrec", "additive", "anime", "ndcg_5") == 0.2290
    assert table2_value("stosa", "stochastic", "ml-1m", "recall_5") == 0.0733
    assert table2_value("stosa", "value", "ML1M", "ndcg_5") == 0.0516
    assert table2_value("sasrec", "stochastic", "beauty", "ndcg_5") is None
    assert table2_value("sasrec", "none", "yelp", "ndcg_5") is None


def test_table3_has_every_printed_cell() -> None:
    frame = table3_frame()
    assert len(frame) == 4 * 9
    assert table3_value(1, "sasrec", "none") == 0.0234
    assert table3_value(4, "stosa", "stochastic") == 0.0270
    assert table3_value(3, "stosa", "additive") == 0.0277
    assert table3_value(5, "sasrec", "none") is None
    assert table3_value(1, "sasrec", "none", "ml-1m") is None
    # Table 3's one-layer row repeats Table 2's Beauty NDCG@5 column.
    for _, row in frame[frame["num_layers"] == 1].iterrows():
        assert row["value"] == table2_value(row["backbone"], row["mechanism"], "beauty", "ndcg_5")


def test_source_names_the_paper() -> None:
    assert ARXIV_ID == "2410.21048"
    assert "2410.21048" in TABLE2_SOURCE and TABLE2_SOURCE.endswith("Table 2")
    assert TABLE3_SOURCE.endswith("Table 3")
