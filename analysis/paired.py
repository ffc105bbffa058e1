"""Per-user paired comparison of a mechanism with the original backbone (pure numpy).

Every evaluated user u is scored by both models on the same target, so per-user outcomes pair
up. For one comparison with seeds s = 1..S (mechanism seed s paired with the original of seed
s) and users u = 1..U present in every run:

    m[s, u], o[s, u]   per-user metric (e.g. NDCG@5) of the mechanism and of the original
    M_u = mean_s m[s, u],  O_u = mean_s o[s, u],  D_u = M_u - O_u
    diff = mean_u D_u,     rel = mean_u M_u / mean_u O_u - 1

Pooling over seeds this way keeps the user as the unit: a user's S paired differences are
averaged (they share the user's difficulty), then users are resampled.

- Confidence interval: paired percentile bootstrap over users (a resample draws U users with
  replacement and keeps each user's M_u and O_u together). Users with equal (M_u, O_u) are
  interchangeable, so a resample's counts per distinct pair are drawn as Multinomial(U, c_j/U),
  which is the same distribution as drawing users, at a cost of (resamples x distinct pairs).
- p-value: two-sided paired sign-flip permutation test of sum_u D_u (under the null the
  mechanism and the original are exchangeable for every user, so each D_u is as likely to be
  -D_u). All 2^n sign patterns of the n non-zero D_u when 2^n <= resamples (exact, as
  scipy.stats.permutation_test does); otherwise Monte Carlo with p = (1 + hits) / (1 + R).
  Users with equal |D_u| are interchangeable: the number of plus signs among c_j of them is
  Binomial(c_j, 1/2).
- Holm-Bonferroni: step-down adjusted p-values across a family of comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import vmap

from analysis.stats import ALPHA
from awr.eval.metrics import metric_sums

RESAMPLES = 10_000
CONFIDENCE = 0.95
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
_CELLS_PER_BATCH = 4_000_000  # resamples x distinct values drawn at once (memory bound)
_MULTINOMIAL_COST = 8  # a multinomial cell costs about as much as drawing 8 users


def per_user_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """(U,) target ranks -> every metric of awr/eval/metrics.py per user, each (U,) float64.

    The formulas are metrics.py's own: `metric_sums` of a single user is that user's value,
    mapped over users with torch.func.vmap. Means over users equal `metrics_from_ranks`.
    """
    tensor = torch.as_tensor(np.asarray(ranks, dtype=np.int64))
    if tensor.ndim != 1:
        raise ValueError(f"ranks must be 1-d, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return {name: np.zeros(0) for name in metric_sums(tensor)}
    return {name: value.numpy() for name, value in vmap(metric_sums)(tensor).items()}


@dataclass(frozen=True)
class PairedResult:
    """One paired comparison (see module doc). Means and differences in metric units;
    `rel_*` in percent of the original's mean; CIs at `confidence`; p two-sided."""

    n_users: int
    n_seeds: int
    treated_mean: float
    baseline_mean: float
    diff: float
    diff_low: float
    diff_high: float
    rel_pct: float
    rel_low_pct: float
    rel_high_pct: float
    p_value: float


def pool_seeds(treated: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, U) per-user values of paired seeds -> (U,) means over seeds M_u and O_u."""
    m = np.atleast_2d(np.asarray(treated, dtype=float))
    o = np.atleast_2d(np.asarray(baseline, dtype=float))
    if m.shape != o.shape:
        raise ValueError(f"paired outcomes differ in shape: {m.shape} vs {o.shape}")
    return m.mean(axis=0), o.mean(axis=0)


def _batches(total: int, width: int) -> list[int]:
    size = max(1, _CELLS_PER_BATCH // max(width, 1))
    return [min(size, total - start) for start in range(0, total, size)]


def bootstrap_means(
    treated: np.ndarray, baseline: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(resamples, 2) means of M and O over user resamples drawn with replacement (paired)."""
    pairs = np.stack([np.asarray(treated, float), np.asarray(baseline, float)], axis=1)
    values, counts = np.unique(pairs, axis=0, return_counts=True)  # (J, 2), (J,)
    n = int(counts.sum())
    if len(counts) * _MULTINOMIAL_COST < n:  # few distinct pairs: draw counts per pair
        out = [
            rng.multinomial(n, counts / n, size=size) @ values / n
            for size in _batches(resamples, len(counts))
        ]
    else:  # many: draw users
        out = []
        for size in _batches(resamples, n):
            users = rng.integers(0, n, size=(size, n))
            out.append(np.stack([pairs[users, 0].mean(axis=1), pairs[users, 1].mean(axis=1)], 1))
    return np.concatenate(out, axis=0)


def _exact_sums(magnitudes: np.ndarray) -> np.ndarray:
    """sum_u eps_u |d_u| for all 2^n sign patterns eps of the n magnitudes."""
    n = magnitudes.size
    patterns = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # (2^n, n) of 0/1
    return (2 * patterns - 1) @ magnitudes


def sign_flip_pvalue(
    differences: np.ndarray, resamples: int = RESAMPLES, rng: np.random.Generator | None = None
) -> float:
    """Two-sided sign-flip permutation p-value of sum(differences) (module doc); 1.0 when
    every difference is zero."""
    d = np.asarray(differences, dtype=float)
    nonzero = np.abs(d[d != 0])
    if nonzero.size == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tolerance = 1e-12 * float(nonzero.sum())
    if 2**nonzero.size <= resamples:
        sums = _exact_sums(nonzero)
        return float(np.mean(np.abs(sums) >= observed - tolerance))
    rng = np.random.default_rng() if rng is None else rng
    magnitudes, counts = np.unique(nonzero, return_counts=True)
    hits = 0
    for size in _batches(resamples, len(counts)):
        plus = rng.binomial(counts, 0.5, size=(size, len(counts)))  # (size, J)
        sums = (2 * plus - counts) @ magnitudes
        hits += int(np.sum(np.abs(sums) >= observed - tolerance))
    return (1 + hits) / (1 + resamples)


def compare(
    treated: np.ndarray,
    baseline: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> PairedResult:
    """Paired comparison of (S, U) per-user values (row s of both = seed s, column u = user u):
    pooled mean difference, bootstrap CIs of it and of the relative change, sign-flip p."""
    m, o = pool_seeds(treated, baseline)
    n_seeds = int(np.atleast_2d(treated).shape[0])
    if m.size == 0:
        raise ValueError("no users to compare")
    rng = np.random.default_rng(seed)
    means = bootstrap_means(m, o, resamples, rng)
    tail = (1 - confidence) / 2
    quantiles = [tail, 1 - tail]
    diff_low, diff_high = np.quantile(means[:, 0] - means[:, 1], quantiles)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = means[:, 0] / means[:, 1] - 1
    base, treat = float(o.mean()), float(m.mean())
    rel = (treat / base - 1) * 100 if base > 0 else math.nan
    rel_low = rel_high = math.nan  # undefined when a resample's original mean is 0
    if base > 0 and np.all(np.isfinite(ratios)):
        rel_low, rel_high = (float(q) * 100 for q in np.quantile(ratios, quantiles))
    return PairedResult(
        n_users=int(m.size),
        n_seeds=n_seeds,
        treated_mean=treat,
        baseline_mean=base,
        diff=treat - base,
        diff_low=float(diff_low),
        diff_high=float(diff_high),
        rel_pct=rel,
        rel_low_pct=rel_low,
        rel_high_pct=rel_high,
        p_value=sign_flip_pvalue(m - o, resamples, rng),
    )


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values: with the m finite p sorted ascending,
    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); NaN stays NaN (not in the family)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def verdict(diff: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """`better` / `worse` when the corrected p is below `alpha` (sign of diff), else
    `no detectable difference`; '' when there is no test."""
    if math.isnan(p_adjusted):
        return ""
    if p_adjusted < alpha and diff != 0:
        return BETTER if diff > 0 else WORSE
    return NO_DIFFERENCE
