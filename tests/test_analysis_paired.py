"""analysis.paired: per-user metrics, paired bootstrap, sign-flip test, Holm; checked by hand,
against scipy's own resampling functions, on a planted difference and on many seeded nulls."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from analysis.paired import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    bootstrap_means,
    compare,
    holm,
    per_user_metrics,
    pool_seeds,
    sign_flip_pvalue,
    verdict,
)
from awr.eval.metrics import metrics_from_ranks


def test_per_user_metrics_by_hand_and_means_match_metrics_py() -> None:
    ranks = np.array([0, 1, 4, 5, 30])
    values = per_user_metrics(ranks)
    np.testing.assert_allclose(values["ndcg_5"], [1, 1 / math.log2(3), 1 / math.log2(6), 0, 0])
    np.testing.assert_array_equal(values["recall_1"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(values["recall_5"], [1, 1, 1, 0, 0])
    np.testing.assert_allclose(values["mrr"], 1 / (ranks + 1))
    rng = np.random.default_rng(0)
    many = rng.geometric(0.05, size=500) - 1
    means = metrics_from_ranks(torch.from_numpy(many))
    per_user = per_user_metrics(many)
    assert set(per_user) == set(means)
    for name, mean in means.items():
        assert per_user[name].mean() == pytest.approx(mean, rel=1e-12)


def test_tiny_example_by_hand() -> None:
    # 2 seeds x 3 users. M_u = [0.75, 1.0, 0.0], O_u = [0.25, 0.0, 0.25]: D = [0.5, 1.0, -0.25]
    treated = np.array([[1.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
    baseline = np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.5]])
    m, o = pool_seeds(treated, baseline)
    np.testing.assert_allclose(m, [0.75, 1.0, 0.0])
    np.testing.assert_allclose(o, [0.25, 0.0, 0.25])
    result = compare(treated, baseline, resamples=1000, seed=3)
    assert result.n_users == 3 and result.n_seeds == 2
    assert result.diff == pytest.approx(1.25 / 3)
    assert result.rel_pct == pytest.approx(((1.75 / 3) / (0.5 / 3) - 1) * 100)  # +250%
    # 8 sign patterns of (0.5, 1.0, 0.25): |sum| >= 1.25 for (+++), (++-), (---), (--+)
    assert result.p_value == pytest.approx(4 / 8)
    assert result.diff_low <= result.diff <= result.diff_high


def test_exact_sign_flip_equals_scipy_permutation_test() -> None:
    rng = np.random.default_rng(7)
    d = rng.choice([0.0, 0.0, 0.5, -0.37, 1.0, -1.0, 0.63], size=11) + 0.1
    scipy_p = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, vectorized=True
    ).pvalue
    assert sign_flip_pvalue(d, resamples=10_000) == pytest.approx(scipy_p, abs=1e-12)
    for signs in itertools.product([1, -1], repeat=3):  # symmetric: sign of all flips nothing
        flipped = np.array(signs) * np.array([0.2, 0.5, 1.1])
        assert sign_flip_pvalue(flipped) == pytest.approx(sign_flip_pvalue(-flipped))
    assert sign_flip_pvalue(np.zeros(5)) == 1.0


def test_monte_carlo_sign_flip_agrees_with_scipy() -> None:
    rng = np.random.default_rng(11)
    d = rng.choice([0.0, 0.0, 0.0, 1.0, -1.0, 0.5, -0.5, 0.37], size=300) + 0.004
    ours = sign_flip_pvalue(d, resamples=20_000, rng=np.random.default_rng(1))
    theirs = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=20_000, vectorized=True, rng=2
    ).pvalue
    assert 0.01 < theirs < 0.9  # a p-value in the middle, where Monte Carlo error shows
    assert ours == pytest.approx(theirs, abs=0.02)  # both have standard error < 0.004


def test_bootstrap_ci_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(5)
    o = rng.choice([0.0, 0.0, 0.0, 1.0, 0.63, 0.5], size=400)
    m = np.where(rng.random(400) < 0.2, rng.choice([0.0, 1.0], size=400), o)
    result = compare(m[None], o[None], resamples=20_000, seed=1)
    scipy_ci = stats.bootstrap(
        (m, o),
        lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=20_000,
        method="percentile",
        rng=3,
    ).confidence_interval
    width = scipy_ci.high - scipy_ci.low
    assert result.diff_low == pytest.approx(scipy_ci.low, abs=0.05 * width)
    assert result.diff_high == pytest.approx(scipy_ci.high, abs=0.05 * width)


def test_grouped_bootstrap_has_the_spread_of_resampling_users() -> None:
    rng = np.random.default_rng(2)
    m = rng.choice([0.0, 1.0, 0.5], size=1000)
    o = rng.choice([0.0, 1.0], size=1000)
    means = bootstrap_means(m, o, 20_000, np.random.default_rng(0))
    assert means.shape == (20_000, 2)
    d = m - o
    assert (means[:, 0] - means[:, 1]).mean() == pytest.approx(d.mean(), abs=0.002)
    expected_sd = d.std() / math.sqrt(d.size)  # sd of a mean of n draws with replacement
    assert (means[:, 0] - means[:, 1]).std() == pytest.approx(expected_sd, rel=0.03)


def test_compare_is_seeded() -> None:
    rng = np.random.default_rng(4)
    m, o = rng.random((3, 200)), rng.random((3, 200))
    assert compare(m, o, seed=9) == compare(m, o, seed=9)
    assert compare(m, o, seed=9).diff_low != compare(m, o, seed=10).diff_low


def _null_and_planted(rng: np.random.Generator, users: int, lift: float) -> tuple:
    """Per-user NDCG@5 of 3 seeds: each user has a difficulty; the mechanism's rank is the
    original's distribution, improved (rank halved) for a `lift` fraction of users."""
    p = rng.beta(0.5, 8.0, size=users)  # per-user chance of a hit per rank step
    base = rng.geometric(p, size=(3, users)) - 1
    other = rng.geometric(p, size=(3, users)) - 1
    improved = rng.random((3, users)) < lift
    other = np.where(improved, other // 2, other)
    ndcg = per_user_metrics(np.concatenate([other, base]).ravel())["ndcg_5"]
    return ndcg[: 3 * users].reshape(3, users), ndcg[3 * users :].reshape(3, users)


def test_planted_difference_is_detected_both_ways() -> None:
    rng = np.random.default_rng(0)
    treated, baseline = _null_and_planted(rng, 3000, lift=0.3)
    result = compare(treated, baseline, seed=1)
    assert result.diff > 0 and result.diff_low > 0 and result.rel_low_pct > 0
    assert result.p_value < 0.001
    assert verdict(result.diff, result.p_value) == BETTER
    reverse = compare(baseline, treated, seed=1)
    assert reverse.diff == pytest.approx(-result.diff) and reverse.diff_high < 0
    assert verdict(reverse.diff, reverse.p_value) == WORSE


def test_nulls_reject_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(123)
    trials, rejected, covered = 300, 0, 0
    for i in range(trials):
        treated, baseline = _null_and_planted(rng, 250, lift=0.0)
        result = compare(treated, baseline, resamples=999, seed=i)
        rejected += result.p_value < 0.05
        covered += result.diff_low <= 0 <= result.diff_high
    # 300 nulls at alpha 0.05: 15 expected, binomial sd 3.8; coverage sd 0.013
    assert 6 <= rejected <= 26
    assert 0.915 <= covered / trials <= 0.985


def test_holm_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, math.nan])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(holm(p)[4])
    assert holm(np.array([0.5, 0.9])).tolist() == [1.0, 1.0]
    assert np.isnan(holm(np.array([math.nan]))).all()


def test_holm_controls_the_family_where_raw_p_do_not() -> None:
    rng = np.random.default_rng(8)
    raw = rng.uniform(size=(2000, 12))  # 2000 families of 12 true nulls
    any_raw = (raw < 0.05).any(axis=1).mean()
    any_holm = (np.stack([holm(row) for row in raw]) < 0.05).any(axis=1).mean()
    assert any_raw > 0.4 and any_holm <= 0.065


def test_verdict_words() -> None:
    assert verdict(0.01, 0.001) == BETTER
    assert verdict(-0.01, 0.001) == WORSE
    assert verdict(0.01, 0.2) == NO_DIFFERENCE
    assert verdict(0.01, math.nan) == ""
