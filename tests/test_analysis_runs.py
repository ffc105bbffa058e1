"""analysis.runs: MLflow -> tidy DataFrame, histories and attention artifacts."""

from __future__ import annotations

import numpy as np
import pytest
from fakestore import EPOCHS, FAILED_NDCG5, NDCG5, attention_arrays
from mlflow.tracking import MlflowClient

from analysis.runs import (
    AnalysisError,
    finished,
    load_attention,
    load_trials,
    metric_history,
    parse_param,
    status_counts,
)
from awr.config import ConfigError, field_types

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.usefixtures("quiet_mlflow"),
]


def test_one_row_per_trial_with_typed_params(store_uri: str) -> None:
    trials = load_trials("paper", store_uri)
    stage2 = sum(len(v) for b in NDCG5.values() for m in b.values() for v in m.values())
    assert len(trials) == stage2 + 2  # stage-1 run and failed run; the parent run is no trial
    assert set(field_types()) <= set(trials.columns)
    row = trials[(trials["dataset"] == "ml-1m") & (trials["seed"] == 6)].iloc[0]
    assert row["hidden_size"] == 64 and isinstance(row["hidden_size"], np.integer)
    assert row["lr"] == pytest.approx(0.001)
    assert row["refine_per_head"] is False or row["refine_per_head"] == np.False_
    assert row["stage"] == "2" and row["sweep"] == "paper"
    assert trials["compile"].dtype == bool and trials["seed"].dtype.kind == "i"
    assert "test/recall_1" in trials.columns and "test/ndcg_20" in trials.columns
    assert row["git_commit"] == "abc1234"


def test_failed_runs_are_counted_and_excluded(store_uri: str) -> None:
    trials = load_trials("paper", store_uri)
    assert status_counts(trials) == {"FAILED": 1, "FINISHED": len(trials) - 1}
    done = finished(trials)
    assert (done["status"] == "FINISHED").all()
    assert FAILED_NDCG5 not in set(done["test/ndcg_5"])


def test_unknown_sweep_is_a_clear_error(store_uri: str) -> None:
    with pytest.raises(AnalysisError, match="nosuchsweep.*sqlite:///"):
        load_trials("nosuchsweep", store_uri)


def test_parse_param_types_strings_back() -> None:
    assert parse_param("num_layers", "3") == 3
    assert parse_param("dropout", "0.5") == 0.5
    assert parse_param("stosa_released_code", "True") is True
    assert parse_param("compile", "False") is False
    assert parse_param("dataset", "beauty") == "beauty"
    assert parse_param("something_new", "7") == "7"
    assert parse_param("hidden_size", "64.0") == 64  # an int logged as a float
    assert parse_param("compile", "off") is False  # the spellings the CLI takes
    with pytest.raises(ConfigError, match="compile expects a bool"):
        parse_param("compile", "maybe")


def test_store_holds_the_described_runs(store_uri: str) -> None:
    client = MlflowClient(tracking_uri=store_uri)
    paper = client.get_experiment_by_name("paper")
    runs = client.search_runs([paper.experiment_id], max_results=1000)
    kinds = [run.data.tags["awr.kind"] for run in runs]
    stage2 = sum(len(v) for b in NDCG5.values() for m in b.values() for v in m.values())
    assert kinds.count("parent") == 1
    assert kinds.count("trial") == stage2 + 2  # + stage 1 run + failed run
    statuses = [run.info.status for run in runs if run.data.tags["awr.kind"] == "trial"]
    assert statuses.count("FAILED") == 1


def test_metric_history_is_by_epoch(store_uri: str) -> None:
    trials = load_trials("paper", store_uri)
    run_id = trials[(trials["stage"] == "2") & (trials["seed"] == 1)]["run_id"].iloc[0]
    grad = metric_history(store_uri, run_id, "grad_norm")
    assert list(grad.index) == list(range(1, EPOCHS + 1))
    assert grad.loc[2] == pytest.approx(0.5 + 0.02)
    valid = metric_history(store_uri, run_id, "valid/ndcg_5")
    assert len(valid) == EPOCHS
    assert metric_history(store_uri, run_id, "no/such_metric").empty


def test_load_attention_returns_the_logged_arrays(store_uri: str) -> None:
    trials = load_trials("paper", store_uri)
    pick = trials[
        (trials["dataset"] == "beauty")
        & (trials["backbone"] == "sasrec")
        & (trials["seed"] == 1)
        & (trials["stage"] == "2")
    ]
    by_mechanism = dict(zip(pick["mechanism"], pick["run_id"], strict=True))
    arrays = load_attention(store_uri, by_mechanism["simple"])
    expected = attention_arrays("simple", 1)
    assert arrays is not None and set(arrays) == {"layer0_A", "layer0_refined"}
    np.testing.assert_array_equal(arrays["layer0_refined"], expected["layer0_refined"])
    assert arrays["layer0_A"].shape == (2, 2, 15, 15)
    other = trials[(trials["dataset"] == "ml-1m")]["run_id"].iloc[0]
    assert load_attention(store_uri, other) is None
