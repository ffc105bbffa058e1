"""analysis.complexity: parameters counted vs the paper's formula, from benchmark records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.complexity import complexity_table, load_bench, paper_extra_params
from analysis.runs import AnalysisError


def _record(backbone: str, mechanism: str, num_params: int, **extra: object) -> dict:
    return {
        "backbone": backbone,
        "mechanism": mechanism,
        "dataset": "beauty",
        "max_len": 50,
        "hidden_size": 64,
        "num_layers": 1,
        "device": "cpu",
        "num_params": num_params,
        "train_seconds_per_epoch": 1.234,
        "sequences_per_second": 1000.0,
        "eval_seconds": 0.5,
        "users_per_second": 2000.0,
        "peak_memory_mb": None,
        "torch_version": "2.13.0",
        **extra,
    }


def test_paper_formula() -> None:
    assert paper_extra_params("simple", 50, 1) == 2 * 50 * 50
    assert paper_extra_params("value", 200, 2) == 3 * 200 * 200 * 2
    assert paper_extra_params("stochastic", 50, 2, num_heads=4, refine_per_head=True) == 40_000
    assert paper_extra_params("none", 50, 4) == 0
    assert paper_extra_params("unknown", 50, 1) is None


def test_complexity_table(tmp_path: Path) -> None:
    records = [
        _record("sasrec", "value", 107_500),  # no extra_params: counted vs the original
        _record("sasrec", "none", 100_000, extra_params=0),
        _record("sasrec", "simple", 105_000, extra_params=5_000),
        _record("sasrec", "additive", 105_001, extra_params=5_001, peak_memory_mb=12.5),
    ]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(records))
    table = complexity_table(load_bench(path))
    numeric = table.numeric
    assert list(numeric["mechanism"]) == ["none", "simple", "value", "additive"]
    assert list(numeric["extra_params"]) == [0, 5_000, 7_500, 5_001]
    assert list(numeric["paper_extra_params"]) == [0, 5_000, 7_500, 5_000]
    assert list(numeric["extra_minus_paper"]) == [0, 0, 0, 1]
    row = table.cells.iloc[2]
    assert (row["Mechanism"], row["L"], row["d"], row["Device"]) == (
        "M2 value-weighted",
        "50",
        "64",
        "cpu",
    )
    assert (row["Params"], row["Extra (counted)"], row["Train s/epoch"]) == (
        "107,500",
        "7,500",
        "1.23",
    )
    assert row["Peak MB"] == "–" and table.cells.iloc[3]["Peak MB"] == "12.5"
    assert "| L | d |" in table.markdown()


def test_bad_bench_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"backbone": "sasrec"}))
    with pytest.raises(AnalysisError, match="list of records"):
        load_bench(path)
    with pytest.raises(AnalysisError, match="cannot read"):
        load_bench(tmp_path / "missing.json")
