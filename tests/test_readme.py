"""The README's "Python API" section, run as written: every ```python block is executed (exec
in a fresh namespace, in a temporary folder, with a private parsed-array cache) and what it
made is checked. A block added to the section without a test here fails the first test."""

from __future__ import annotations

import math
import re
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from awr.eval.metrics import METRIC_NAMES

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Python API"
# The call that identifies each block (each block holds exactly one of them).
TRIAL, DATASET, MODEL, SWEEP, REPORT = (
    "run_trial(",
    "dataset_stats(",
    "build_model(",
    "run_sweep(",
    "build_report(",
)
MARKERS = (TRIAL, DATASET, MODEL, SWEEP, REPORT)
ML1M_COUNTS = (6040, 3416, 999611)


def python_blocks() -> list[str]:
    """The ```python blocks of the README's Python API section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + len(SECTION) + 2)
    section = text[start : end if end >= 0 else len(text)]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)


def block(marker: str) -> str:
    found = [code for code in python_blocks() if marker in code]
    assert len(found) == 1, f"{len(found)} Python API blocks of README.md call {marker}"
    return found[0]


def run_block(marker: str) -> dict[str, Any]:
    """Execute the block as a fresh module (registered while it runs, as a script's __main__
    is: Tune pickles the search space by reference); its variables afterwards."""
    name = f"readme_{marker.rstrip('(')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(block(marker), f"README.md ({name})", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module.__dict__


def in_unit_interval(metrics: dict[str, float]) -> bool:
    return all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in metrics.values())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One parsed-array cache for the module: ML-1M is parsed once, not per block."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def folder(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder, as a user running the examples would have."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWR_CACHE_DIR", str(cache_dir))
    return tmp_path


@pytest.fixture
def real_data(data_dir: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWR_DATA_DIR", str(data_dir))
    return folder


def test_every_block_is_tested() -> None:
    blocks = python_blocks()
    assert len(blocks) == len(MARKERS), "a Python API block of README.md has no test here"
    for code in blocks:
        assert sum(marker in code for marker in MARKERS) == 1, code


def test_the_trial_example_learns_and_reproduces(folder: Path) -> None:
    first = run_block(TRIAL)["result"]
    second = run_block(TRIAL)["result"]
    assert first.config.dataset == "synthetic" and first.epochs_run == first.config.max_epochs
    assert set(first.test) == set(METRIC_NAMES) == set(first.valid)
    assert in_unit_interval(first.test) and in_unit_interval(first.valid)
    # the planted next item is learned: chance is about 5 of the ~31 items a user has not seen
    assert first.test["recall_5"] > 0.5, first.test
    assert first.ranks.metrics("test") == pytest.approx(first.test)
    assert second.test == first.test  # seeded: the same numbers again
    assert [r.train_loss for r in second.history] == [r.train_loss for r in first.history]


def test_the_dataset_example_loads_ml1m_and_a_users_file(real_data: Path) -> None:
    names = run_block(DATASET)
    stats, data, mine = names["stats"], names["data"], names["mine"]
    assert (stats["users"], stats["items"], stats["interactions"]) == ML1M_COUNTS
    assert data.num_items == 3416 and len(data.checksum) == 64
    assert mine.name == "my_data" and mine.num_items == 5
    assert [s.tolist() for s in mine.sequences] == [[3, 1, 2, 4], [2, 4, 3], [4, 1, 3, 2, 5]]


def test_the_model_example_scores_every_item(real_data: Path) -> None:
    names = run_block(MODEL)
    scores, metrics = names["scores"], names["metrics"]
    assert tuple(scores.shape) == (4, 3417)
    assert names["test"].inputs.shape == (6040, 50)
    assert set(metrics) == set(METRIC_NAMES) and in_unit_interval(metrics)
    # untrained: near chance (about 20 / 3,250 unseen items), far from a leak of the target
    assert metrics["recall_20"] < 0.05, metrics


@pytest.mark.slow
def test_the_sweep_and_report_examples(folder: Path) -> None:
    assert run_block(SWEEP)["code"] == 0
    names = run_block(REPORT)
    trials: pd.DataFrame = names["trials"]
    assert len(trials) == 4  # stage 1: 2 lr points; stage 2: the original and M1
    stage1 = trials[trials["stage"] == "1"]
    stage2 = trials[trials["stage"] == "2"]
    assert sorted(stage1["lr"]) == [1e-3, 1e-2]
    assert sorted(stage2["mechanism"]) == ["none", "simple"]
    best_lr = stage1.loc[stage1["best_valid/ndcg_5"].idxmax(), "lr"]
    assert (stage2["lr"] == best_lr).all()  # stage 2 ran at stage 1's best validation lr
    assert trials["test/ndcg_5"].between(0, 1).all()
    report = names["report"]
    assert report == Path("reports/readme/report.md") and report.is_file()
    text = report.read_text(encoding="utf-8")
    assert "original" in text and "M1 simple" in text
    table2 = pd.read_csv(folder / "reports" / "readme" / "table2.csv")  # mechanism x metric
    assert set(table2["mechanism"]) == {"none", "simple"}
    assert table2.loc[table2["mechanism"] == "simple", "verdict"].notna().all()
    cell = table2[(table2["mechanism"] == "none") & (table2["metric"] == "ndcg_5")]
    logged = stage2.loc[stage2["mechanism"] == "none", "test/ndcg_5"]
    assert cell["mean"].tolist() == pytest.approx(logged.tolist())  # the report is the store's
