"""analysis.stats: paired tests over seeds, checked against direct scipy calls."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stats import PairedTest, paired_significance, paired_test, paired_values


def _frame(
    mechanism: str, seeds: list[int], values: list[float], pair_key: str = "k"
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": "beauty",
            "backbone": "sasrec",
            "stage": "2",
            "pair_key": pair_key,
            "mechanism": mechanism,
            "seed": seeds,
            "test/ndcg_5": values,
        }
    )


def test_ttest_only_below_six_pairs() -> None:
    x, y = [0.024, 0.025, 0.029], [0.020, 0.022, 0.024]
    result = paired_test(x, y)
    assert result.n == 3
    assert result.p_ttest == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert math.isnan(result.p_wilcoxon)
    assert result.markers() == "*"


def test_both_tests_from_six_pairs() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(7)
    x = y + np.array([0.02, 0.03, 0.01, 0.04, 0.015, 0.025, -0.001])
    result = paired_test(x, y)
    assert result.p_ttest == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert result.p_wilcoxon == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert result.markers() == "*†"


def test_too_few_pairs_give_no_p_values() -> None:
    result = paired_test([0.3], [0.2])
    assert result.n == 1 and math.isnan(result.p_ttest) and math.isnan(result.p_wilcoxon)
    assert result.markers() == ""
    assert PairedTest(n=0).markers() == ""
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1.0, 2.0], [1.0])


def test_runs_pair_by_seed_and_config() -> None:
    treated = _frame("simple", [3, 1, 2, 9], [0.029, 0.024, 0.025, 0.5])
    baseline = _frame("none", [1, 2, 3], [0.020, 0.022, 0.024])
    x, y = paired_values(treated, baseline, "test/ndcg_5")
    np.testing.assert_allclose(x, [0.024, 0.025, 0.029])  # seed 9 has no partner
    np.testing.assert_allclose(y, [0.020, 0.022, 0.024])
    result = paired_significance(treated, baseline, "test/ndcg_5")
    assert result.p_ttest == pytest.approx(stats.ttest_rel(x, y).pvalue)


def test_runs_of_another_config_do_not_pair() -> None:
    treated = _frame("simple", [1, 2, 3], [0.024, 0.025, 0.029], pair_key="other")
    baseline = _frame("none", [1, 2, 3], [0.020, 0.022, 0.024])
    assert paired_significance(treated, baseline, "test/ndcg_5").n == 0
