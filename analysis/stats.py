"""Paired significance of a mechanism's change over the original backbone, over seeds.

Runs pair up by seed when they agree on dataset, backbone, stage and every config param apart
from the mechanism's own (`runs.MECHANISM_PARAMS`) and execution-only ones. Tests are
two-sided: a paired t-test from 2 pairs, a Wilcoxon signed-rank test from 6 pairs (with fewer,
its smallest possible two-sided p-value is above 0.05).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
MIN_PAIRS_TTEST = 2
MIN_PAIRS_WILCOXON = 6
TTEST_MARK = "*"
WILCOXON_MARK = "†"
PAIR_COLUMNS: tuple[str, ...] = ("dataset", "backbone", "stage", "pair_key", "seed")


@dataclass(frozen=True)
class PairedTest:
    """p-values (NaN when not computed) of paired tests on `n` pairs."""

    n: int
    p_ttest: float = math.nan
    p_wilcoxon: float = math.nan

    def markers(self, alpha: float = ALPHA) -> str:
        return significance_marks(self.p_ttest, self.p_wilcoxon, alpha)


def significance_marks(p_ttest: float, p_wilcoxon: float, alpha: float = ALPHA) -> str:
    """`*` when the t-test, `†` when the Wilcoxon test is significant at `alpha` (NaN: not)."""
    marks = ""
    if p_ttest < alpha:
        marks += TTEST_MARK
    if p_wilcoxon < alpha:
        marks += WILCOXON_MARK
    return marks


def paired_test(treated: Sequence[float], baseline: Sequence[float]) -> PairedTest:
    """Paired tests of treated vs baseline (same order = same seed)."""
    x = np.asarray(treated, dtype=float)
    y = np.asarray(baseline, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    n = int(x.size)
    p_ttest = p_wilcoxon = math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if n >= MIN_PAIRS_TTEST:
            p_ttest = float(stats.ttest_rel(x, y).pvalue)
        if n >= MIN_PAIRS_WILCOXON:
            try:
                p_wilcoxon = float(stats.wilcoxon(x, y).pvalue)
            except ValueError:  # e.g. every difference is zero
                p_wilcoxon = math.nan
    return PairedTest(n=n, p_ttest=p_ttest, p_wilcoxon=p_wilcoxon)


def paired_values(
    treated: pd.DataFrame, baseline: pd.DataFrame, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Values of `metric` for the runs of `treated` and `baseline` that pair up by seed.

    Both frames come from `runs.runs_frame`; repeated runs of one seed and config are averaged.
    Returns two aligned arrays ordered by seed.
    """
    keys = list(PAIR_COLUMNS)
    left = treated.groupby(keys, dropna=False)[metric].mean().rename("treated")
    right = baseline.groupby(keys, dropna=False)[metric].mean().rename("baseline")
    both = pd.concat([left, right], axis=1, join="inner").dropna().sort_index(level="seed")
    return both["treated"].to_numpy(), both["baseline"].to_numpy()


def paired_significance(treated: pd.DataFrame, baseline: pd.DataFrame, metric: str) -> PairedTest:
    """Pair runs by seed and config (see module doc) and test the difference in `metric`."""
    x, y = paired_values(treated, baseline, metric)
    return paired_test(x, y)


def paired_runs(treated: pd.DataFrame, baseline: pd.DataFrame) -> list[tuple[int, list, list]]:
    """(seed, treated run ids, baseline run ids) for each seed where runs pair up (module doc),
    ordered by seed; both frames come from `runs.runs_frame` and hold `run_id`."""
    keys = list(PAIR_COLUMNS)
    left = treated.groupby(keys, dropna=False)["run_id"].agg(list).rename("treated")
    right = baseline.groupby(keys, dropna=False)["run_id"].agg(list).rename("baseline")
    both = pd.concat([left, right], axis=1, join="inner").sort_index(level="seed")
    seeds = both.index.get_level_values("seed")
    return [
        (int(seed), list(t), list(b))
        for seed, t, b in zip(seeds, both["treated"], both["baseline"], strict=True)
    ]
