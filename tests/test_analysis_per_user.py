"""analysis.per_user and the like-with-like tables: per-user verdicts from logged ranks.npz,
one block per variant, refused comparisons, and reports on stores with and without ranks.

Store `ranked` (stage 2, ML-1M, 400 test users), test ranks drawn per (backbone, mechanism, seed):
- sasrec none, simple (a planted gain), value (ranks identical to none), seeds 1-3, with ranks;
  sasrec additive seeds 1-3 without ranks.npz (logged before ranks existed);
- stosa stosa_released_code=False: none and simple seeds 1-2, additive seed 7 only;
  stosa stosa_released_code=True: simple seeds 1-2 and no original.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakestore import config, log_run, open_sweep
from mlflow.tracking import MlflowClient

from analysis.paired import BETTER, NO_DIFFERENCE, compare, holm, per_user_metrics
from analysis.per_user import MISSING_RANKS, comparison_seed, seed_to_seed
from analysis.report import FOREST_FILE, build_report, ranks_loader
from analysis.runs import load_trials
from analysis.selection import one_variant, variant_labels
from analysis.tables import NO_ORIGINAL, NO_PAIRS, TABLE2_CELLS, table2, table_runs
from awr.eval.ranks import RANKS_FILE, UserRanks
from awr.schema import SELECTION_KEY, TEST, metric_key
from awr.store import client_for, default_tracking_uri

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.usefixtures("quiet_mlflow"),
]
USERS = 400
RUNS = [  # backbone, mechanism, released code, seeds, with ranks
    ("sasrec", "none", False, (1, 2, 3), True),
    ("sasrec", "simple", False, (1, 2, 3), True),
    ("sasrec", "value", False, (1, 2, 3), True),
    ("sasrec", "additive", False, (1, 2, 3), False),
    ("stosa", "none", False, (1, 2), True),
    ("stosa", "simple", False, (1, 2), True),
    ("stosa", "additive", False, (7,), True),
    ("stosa", "simple", True, (1, 2), True),
]


def ranks_for(backbone: str, mechanism: str, seed: int) -> np.ndarray:
    """The test ranks of a run: the original's draw for the seed; `simple` on sasrec halves the
    rank of every third user; `value` equals the original."""
    base = np.random.default_rng([seed, len(backbone)]).geometric(0.08, size=USERS) - 1
    if backbone == "sasrec" and mechanism == "simple":
        return np.where(np.arange(USERS) % 3 == 0, base // 2, base)
    if mechanism in ("none", "value"):
        return base
    return np.random.default_rng([seed, len(backbone), len(mechanism)]).permutation(base)


def _build(root: Path) -> str:
    uri = default_tracking_uri(root)
    client = client_for(uri)
    experiment, _ = open_sweep(client, uri, "ranked")
    for backbone, mechanism, released, seeds, with_ranks in RUNS:
        for seed in seeds:
            params = config("ml-1m", backbone, mechanism, seed, stosa_released_code=released)
            # each run lists its users in another order: pairing goes by user_index
            users = np.random.default_rng([seed, len(mechanism), released]).permutation(USERS)
            test = ranks_for(backbone, mechanism, seed)[users]
            ranks = UserRanks(users, np.zeros(USERS, int), test)
            final = {metric_key(k, TEST): v for k, v in ranks.metrics("test").items()}
            final[SELECTION_KEY] = 0.05
            name = f"{backbone}-{mechanism}-{released}-s{seed}"
            saved = (ranks.save(root / "staging" / name / RANKS_FILE),) if with_ranks else ()
            log_run(
                client, experiment, params=params, final=final, sweep="ranked", stage="2",
                artifacts=saved,
            )  # fmt: skip
    return uri


@pytest.fixture(scope="module")
def ranked_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _build(tmp_path_factory.mktemp("ranked_store"))


@pytest.fixture(scope="module")
def table(ranked_uri: str):
    return table2(load_trials("ranked", ranked_uri), ranks_of=ranks_loader(ranked_uri))


def _row(numeric: pd.DataFrame, backbone: str, mechanism: str, metric: str, variant: str = ""):
    mask = (numeric["backbone"] == backbone) & (numeric["mechanism"] == mechanism)
    mask &= (numeric["metric"] == metric) & (numeric["variant"] == variant)
    [index] = numeric.index[mask]
    return numeric.loc[index]


def test_variants_only_where_a_setting_varies(ranked_uri: str) -> None:
    runs = load_trials("ranked", ranked_uri)
    labels = variant_labels(runs)
    assert set(labels[runs["backbone"] == "sasrec"]) == {""}
    stosa = runs["backbone"] == "stosa"
    expected = "stosa_released_code=" + runs.loc[stosa, "stosa_released_code"].astype(str)
    assert (labels[stosa] == expected).all()
    drawn = one_variant(table_runs(runs, TABLE2_CELLS))
    assert set(drawn.loc[drawn["backbone"] == "stosa", "variant"]) == {"stosa_released_code=False"}


def test_per_user_numbers_match_a_direct_computation(table) -> None:
    row = _row(table.numeric, "sasrec", "simple", "ndcg_5")
    per_seed = [
        per_user_metrics(ranks_for("sasrec", m, s))["ndcg_5"]
        for m in ("simple", "none")
        for s in (1, 2, 3)
    ]
    d = (np.stack(per_seed[:3]) - np.stack(per_seed[3:])).mean(axis=0)
    base = np.stack(per_seed[3:]).mean()
    assert row["user_seeds"] == 3 and row["user_n"] == USERS and row["user_status"] == ""
    assert row["user_diff"] == pytest.approx(d.mean())
    assert row["user_rel_pct"] == pytest.approx(d.mean() / base * 100)
    assert row["user_rel_low_pct"] < row["user_rel_pct"] < row["user_rel_high_pct"]
    assert row["user_rel_low_pct"] > 0 and row["verdict"] == BETTER
    cell = {"dataset": "ml-1m", "backbone": "sasrec", "mechanism": "simple", "variant": ""}
    direct = compare(
        np.stack(per_seed[:3]), np.stack(per_seed[3:]), seed=comparison_seed(cell, "ndcg_5")
    )
    assert row["user_p"] == direct.p_value and row["user_diff_low"] == direct.diff_low
    assert row["user_rel_high_pct"] == pytest.approx(direct.rel_high_pct)
    # the seed-level change over the same seeds is the same relative change
    assert row["rel_change_pct"] == pytest.approx(row["user_rel_pct"])


def test_identical_models_and_holm_family(table) -> None:
    numeric = table.numeric
    null = _row(numeric, "sasrec", "value", "recall_5")
    assert null["user_diff"] == 0 and null["user_p"] == 1.0 and null["verdict"] == NO_DIFFERENCE
    tested = numeric["user_p"].notna()
    # sasrec simple and value, stosa simple (False) x 3 metrics
    assert int(tested.sum()) == 9
    np.testing.assert_allclose(numeric.loc[tested, "user_p_holm"], holm(numeric["user_p"])[tested])


def test_refused_and_missing_comparisons(table) -> None:
    numeric = table.numeric
    unpaired = _row(numeric, "stosa", "simple", "ndcg_5", "stosa_released_code=True")
    assert unpaired["comparison"] == NO_ORIGINAL and np.isnan(unpaired["rel_change_pct"])
    assert unpaired["verdict"] == ""
    no_seed = _row(numeric, "stosa", "additive", "ndcg_5", "stosa_released_code=False")
    assert no_seed["comparison"] == NO_PAIRS and np.isnan(no_seed["rel_change_pct"])
    old = _row(numeric, "sasrec", "additive", "ndcg_5")
    assert old["user_status"] == MISSING_RANKS and not np.isnan(old["rel_change_pct"])
    cells = table.cells
    assert list(cells.columns[:3]) == ["Backbone", "Settings", "Mechanism"]
    stosa_true = cells[cells["Settings"] == "stosa_released_code=True"]
    assert list(stosa_true["Mechanism"]) == ["M1 simple"]
    text = stosa_true.iloc[0]["ML-1M N@5"]
    assert NO_ORIGINAL in text and "%" not in text.split("paper")[0]
    simple = cells[(cells["Backbone"] == "SASRec") & (cells["Mechanism"] == "M1 simple")]
    r5 = _row(numeric, "sasrec", "simple", "recall_5")
    assert f"per user {r5['user_rel_pct']:+.1f}% [" in simple.iloc[0]["ML-1M R@5"]
    assert simple.iloc[0]["ML-1M R@5"].count(BETTER) == 1


def test_report_with_ranks_has_verdicts_and_forest(ranked_uri: str, tmp_path: Path) -> None:
    path = build_report("ranked", ranked_uri, tmp_path / "out")
    text = path.read_text()
    assert "### In plain words" in text and f"]({FOREST_FILE})" in text
    assert "Per-user verdicts are missing for 3 of 12 compared cells" in text
    assert "**SASRec, ML-1M**" in text and "**STOSA, ML-1M (stosa_released_code=True)**" in text
    assert "Holm over the table's 9 comparisons" in text
    assert (tmp_path / "out" / FOREST_FILE).stat().st_size > 0
    assert "### Seed-to-seed check" in text and "seed pairs differ at p < 0.05" in text
    assert len(pd.read_csv(tmp_path / "out" / "seed_check.csv")) == 4
    csv = pd.read_csv(tmp_path / "out" / "table2.csv")
    assert {"variant", "comparison", "user_diff", "user_p_holm", "verdict"} <= set(csv.columns)
    client = MlflowClient(tracking_uri=ranked_uri)
    experiment = client.get_experiment_by_name("ranked")
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`awr.kind` = 'report'"
    )
    assert FOREST_FILE in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_seed_to_seed_compares_each_original_with_itself(ranked_uri: str) -> None:
    runs = table_runs(load_trials("ranked", ranked_uri), TABLE2_CELLS)
    check = seed_to_seed(runs, ranks_loader(ranked_uri), resamples=2000)
    pairs = list(zip(check["backbone"], check["seed_a"], check["seed_b"], strict=True))
    assert pairs == [("sasrec", 1, 2), ("sasrec", 1, 3), ("sasrec", 2, 3), ("stosa", 1, 2)]
    a, b = (per_user_metrics(ranks_for("sasrec", "none", s))["ndcg_5"] for s in (1, 3))
    row = check.iloc[1]
    assert row["user_rel_pct"] == pytest.approx((a.mean() / b.mean() - 1) * 100)
    assert 0 <= row["user_p"] <= 1 and row["user_rel_low_pct"] < row["user_rel_high_pct"]
