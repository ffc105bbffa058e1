"""Per-user paired comparisons of a table's mechanism rows with the original of the same cell
and variant, from each run's `ranks.npz` (statistics in analysis/paired.py).

A comparison uses the seeds where a mechanism run and an original run pair up (same dataset,
backbone, stage, settings and seed; analysis/stats.py) and both have per-user ranks; repeated
runs of one seed are averaged per user; users are those present in every run. Its p-value
enters one Holm-Bonferroni family with every other per-user comparison of the same table
(all datasets, backbones, variants, mechanisms and metrics), which gives the verdict.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from functools import reduce

import numpy as np
import pandas as pd

from analysis.markdown import fmt_pct
from analysis.names import ORIGINAL
from analysis.paired import (
    RESAMPLES,
    compare,
    holm,
    per_user_metrics,
    verdict,
)
from analysis.selection import sort_cells
from analysis.stats import ALPHA, paired_runs
from awr.eval.ranks import UserRanks

RanksOf = Callable[[str], UserRanks | None]
MISSING_RANKS = "no per-user ranks"
PER_USER_COLUMNS: tuple[str, ...] = (
    "user_status",
    "user_seeds",
    "user_n",
    "user_diff",
    "user_diff_low",
    "user_diff_high",
    "user_rel_pct",
    "user_rel_low_pct",
    "user_rel_high_pct",
    "user_p",
    "user_p_holm",
    "verdict",
)
_RESULT_COLUMNS = {
    "user_seeds": "n_seeds",
    "user_n": "n_users",
    "user_diff": "diff",
    "user_diff_low": "diff_low",
    "user_diff_high": "diff_high",
    "user_rel_pct": "rel_pct",
    "user_rel_low_pct": "rel_low_pct",
    "user_rel_high_pct": "rel_high_pct",
    "user_p": "p_value",
}


def user_outcomes(
    run_ids: Sequence[str], ranks_of: RanksOf, metrics: Sequence[str]
) -> pd.DataFrame | None:
    """Per-user test metrics of one seed's runs, indexed by user_index, averaged over the runs
    (users in all of them); None when a run has no per-user ranks."""
    frames = []
    for run_id in run_ids:
        ranks = ranks_of(run_id)
        if ranks is None:
            return None
        values = per_user_metrics(ranks.test_rank)
        index = pd.Index(ranks.user_index, name="user_index")
        frames.append(pd.DataFrame({m: values[m] for m in metrics}, index=index))
    common = reduce(np.intersect1d, [frame.index.to_numpy() for frame in frames])
    return sum(frame.loc[common] for frame in frames) / len(frames)


def paired_outcomes(
    pairs: Sequence[tuple[int, list, list]], ranks_of: RanksOf, metrics: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metric -> ((S, U) mechanism, (S, U) original) per-user values over the S seed pairs whose
    runs all have ranks, on the users present in every run; {} when no pair has ranks."""
    sides = []
    for _, treated_ids, baseline_ids in pairs:
        treated = user_outcomes(treated_ids, ranks_of, metrics)
        baseline = user_outcomes(baseline_ids, ranks_of, metrics)
        if treated is not None and baseline is not None:
            sides.append((treated, baseline))
    if not sides:
        return {}
    frames = [frame for pair in sides for frame in pair]
    users = reduce(np.intersect1d, [frame.index.to_numpy() for frame in frames])
    return {
        metric: (
            np.stack([t.loc[users, metric].to_numpy() for t, _ in sides]),
            np.stack([b.loc[users, metric].to_numpy() for _, b in sides]),
        )
        for metric in metrics
    }


def _matching(runs: pd.DataFrame, cell: dict[str, object]) -> pd.DataFrame:
    mask = pd.Series(True, index=runs.index)
    for column, value in cell.items():
        mask &= runs[column] == value
    return runs[mask]


def comparison_seed(cell: dict[str, object], metric: str, seed: int = 0) -> int:
    """A resampling seed fixed by the comparison's name, so adding rows changes no other CI."""
    name = "|".join(f"{k}={v}" for k, v in sorted(cell.items())) + f"|{metric}|{seed}"
    return zlib.crc32(name.encode())


def add_per_user(
    numeric: pd.DataFrame,
    runs: pd.DataFrame,
    ranks_of: RanksOf,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Add PER_USER_COLUMNS to a table's numeric frame (tables.summarize; cell columns are
    those before `comparison`) for mechanism rows with seed pairs; Holm across all of them."""
    cells = list(numeric.columns[: numeric.columns.get_loc("comparison")])
    out = numeric.copy()
    for column in PER_USER_COLUMNS:
        out[column] = "" if column in ("user_status", "verdict") else math.nan
    eligible = (out["mechanism"] != ORIGINAL) & (out["comparison"] == "") & (out["n_pairs"] > 0)
    for key, rows in out[eligible].groupby(cells, sort=False, dropna=False):
        cell = dict(zip(cells, key, strict=True))
        treated = _matching(runs, cell)
        originals = _matching(runs, cell | {"mechanism": ORIGINAL})
        pairs = paired_runs(treated, originals)
        outcomes = paired_outcomes(pairs, ranks_of, list(rows["metric"]))
        for index, metric in rows["metric"].items():
            if metric not in outcomes:
                out.loc[index, "user_status"] = MISSING_RANKS
                continue
            result = compare(
                *outcomes[metric], resamples=resamples, seed=comparison_seed(cell, metric, seed)
            )
            for column, field in _RESULT_COLUMNS.items():
                out.loc[index, column] = getattr(result, field)
    out["user_p_holm"] = holm(out["user_p"].to_numpy(dtype=float))
    out["verdict"] = [
        verdict(d, p, alpha) for d, p in zip(out["user_diff"], out["user_p_holm"], strict=True)
    ]
    return out


def per_user_text(row: pd.Series) -> str:
    """`per user +2.6% [+0.5%, +4.7%], better` for a row with a per-user result, else ''."""
    if not isinstance(row.get("verdict"), str) or not row["verdict"]:
        return ""
    if not math.isnan(row["user_rel_pct"]):
        change = fmt_pct(row["user_rel_pct"])
        ci = f"[{fmt_pct(row['user_rel_low_pct'])}, {fmt_pct(row['user_rel_high_pct'])}]"
    else:
        change = f"{row['user_diff']:+.4f}"
        ci = f"[{row['user_diff_low']:+.4f}, {row['user_diff_high']:+.4f}]"
    return f"per user {change} {ci}, {row['verdict']}"


def missing_ranks_count(numeric: pd.DataFrame) -> int:
    """How many mechanism cells of a table lack per-user verdicts because ranks are missing."""
    if "user_status" not in numeric.columns:
        return 0
    return int((numeric["user_status"] == MISSING_RANKS).sum())


SEED_CHECK_COLUMNS: tuple[str, ...] = (
    "dataset",
    "backbone",
    "variant",
    "metric",
    "seed_a",
    "seed_b",
    "user_rel_pct",
    "user_rel_low_pct",
    "user_rel_high_pct",
    "user_p",
)


def seed_to_seed(
    runs: pd.DataFrame,
    ranks_of: RanksOf,
    metric: str = "ndcg_5",
    *,
    resamples: int = RESAMPLES,
) -> pd.DataFrame:
    """The per-user test of the original against itself: for every two seeds a < b of one
    dataset x backbone x variant, seed a's original vs seed b's, one seed each (raw p).

    The per-user CI and p condition on the trained models: they measure the sampling of users,
    not the spread between training seeds. Two seeds of the same model differ only by that
    spread, so how often these comparisons come out below 0.05 shows how much of a verdict
    training noise alone can produce."""
    originals = runs[runs["mechanism"] == ORIGINAL]
    records = []
    for (dataset, backbone, variant), group in originals.groupby(
        ["dataset", "backbone", "variant"], sort=False, dropna=False
    ):
        by_seed = {
            int(seed): user_outcomes(list(rows["run_id"]), ranks_of, [metric])
            for seed, rows in group.groupby("seed")
        }
        by_seed = {seed: frame for seed, frame in by_seed.items() if frame is not None}
        for seed_a, seed_b in itertools.combinations(sorted(by_seed), 2):
            a, b = by_seed[seed_a], by_seed[seed_b]
            users = np.intersect1d(a.index.to_numpy(), b.index.to_numpy())
            cell = {"dataset": dataset, "backbone": backbone, "variant": variant}
            result = compare(
                a.loc[users, metric].to_numpy()[None],
                b.loc[users, metric].to_numpy()[None],
                resamples=resamples,
                seed=comparison_seed(cell, metric, seed_a * 1000 + seed_b),
            )
            records.append(
                {
                    **cell,
                    "metric": metric,
                    "seed_a": seed_a,
                    "seed_b": seed_b,
                    "user_rel_pct": result.rel_pct,
                    "user_rel_low_pct": result.rel_low_pct,
                    "user_rel_high_pct": result.rel_high_pct,
                    "user_p": result.p_value,
                }
            )
    return sort_cells(pd.DataFrame(records, columns=list(SEED_CHECK_COLUMNS)))
