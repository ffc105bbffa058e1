"""analysis.report: report.md, CSVs and PNGs written and logged as artifacts of a report run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from analysis.report import FIGURE_FILES, FOREST_FILE, build_report
from analysis.runs import AnalysisError

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.usefixtures("quiet_mlflow"),
]


def _bench(path: Path) -> Path:
    records = [
        {"backbone": "sasrec", "mechanism": m, "dataset": "beauty", "max_len": 50,
         "hidden_size": 64, "num_layers": 1, "device": "cpu", "num_params": p, "extra_params": e,
         "train_seconds_per_epoch": 2.0, "sequences_per_second": 500.0, "eval_seconds": 1.0,
         "users_per_second": 900.0, "peak_memory_mb": None, "torch_version": "2.13.0"}
        for m, p, e in (("none", 1000, 0), ("simple", 6000, 5000))
    ]  # fmt: skip
    path.write_text(json.dumps(records))
    return path


def _report_runs(store_uri: str, sweep: str) -> list:
    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name(sweep)
    return client.search_runs(
        [experiment.experiment_id], filter_string="tags.`awr.kind` = 'report'"
    )


def test_report_for_a_two_stage_sweep(store_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    path = build_report("paper", store_uri, out, _bench(tmp_path / "bench.json"))
    assert path == out / "report.md"
    text = path.read_text()
    assert "sweep `paper`" in text
    assert "Trial runs: 39 finished, 1 failed" in text
    assert "| SASRec | M1 simple | 0.0135 ± 0.0014 (n=3), +18.2%\\*, paper 0.0104 (+7.2%) |" in text
    assert "†" in text and "Wilcoxon" in text and "arXiv 2410.21048" in text
    # a store written before ranks.npz: seed-level columns, and a note saying why no verdicts
    assert "Per-user verdicts are missing for 15 of 15 compared cells" in text
    assert "no `ranks.npz`" in text and "per user" not in text.split("## Legend")[0]
    assert not (out / FOREST_FILE).exists() and not (out / "seed_check.csv").exists()
    assert "## Table 3" not in text and "## Complexity" in text
    for file in FIGURE_FILES.values():
        assert f"]({file})" in text
        assert (out / file).stat().st_size > 0
    table = pd.read_csv(out / "table2.csv")
    assert {"mean", "std", "n", "p_ttest", "p_wilcoxon", "paper"} <= set(table.columns)
    assert (out / "complexity.csv").exists() and not (out / "table3.csv").exists()
    # every Table 2 run: best epoch 40 of 60 run, under the default budget of 400
    assert "0 of 38 trials ran the whole budget of 400 epochs" in text
    assert "best validation epochs range from 40 to 40" in text
    convergence = pd.read_csv(out / "convergence.csv")
    assert len(convergence) == 10 and set(convergence["trials"]) == {1, 3, 6}
    assert "| Beauty | SASRec | original | 3 | 40 [40-40] | 60 | 0 of 3 |" in text

    [run] = _report_runs(store_uri, "paper")
    assert run.info.run_name == "report" and run.info.status == "FINISHED"
    client = MlflowClient(tracking_uri=store_uri)
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "table2.csv", "complexity.csv", *FIGURE_FILES.values()} <= logged
    assert run.data.metrics["runs_failed"] == 1


def test_report_with_several_layers_has_table3(store_uri: str, tmp_path: Path) -> None:
    path = build_report("layers", store_uri, tmp_path / "layers")
    text = path.read_text()
    assert "## Table 3" in text and "Runs with 1 layer" in text
    assert "| Beauty | 2 | 0.0250 ± 0.0014 (n=2), paper 0.0242 |" in text
    assert (tmp_path / "layers" / "table3.csv").exists()
    # no attention.npz in this sweep: Figure 3 is skipped and the report says why
    assert "Skipped figures" in text and "attention.npz" in text
    assert not (tmp_path / "layers" / FIGURE_FILES[3]).exists()


def test_missing_sweep_or_no_finished_runs_raise(store_uri: str, tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match=r"'nosuchsweep'.*sqlite:///"):
        build_report("nosuchsweep", store_uri, tmp_path / "a")
    with pytest.raises(AnalysisError, match=r"'allfailed'.*no finished trial runs.*FAILED"):
        build_report("allfailed", store_uri, tmp_path / "b")
