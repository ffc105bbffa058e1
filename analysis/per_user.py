"""Per-user paired comparisons of a table's mechanism rows with the original of the same cell
and variant, from each run's `ranks.npz` (statistics in analysis/paired.py).

A comparison uses the seeds where a mechanism run and an original run pair up (same dataset,
backbone, stage, settings and seed; analysis/stats.py) and both have per-user ranks; repeated
runs of one seed are averaged per user; users are those present in every run. Its p-value
enters one Holm-Bonferroni family with every other per-user comparison of the same table
(all datasets, backbones, variants, mechanisms and metrics), which gives the verdict.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from functools import reduce

import numpy as np
import pandas as pd

from analysis.markdown import fmt_pct
from analysis.names import BACKBONE_LABELS, MECHANISM_LABELS, METRIC_LABELS, ORIGINAL, label
from analysis.paired import (
    ALPHA,
    BETTER,
    RESAMPLES,
    WORSE,
    compare,
    holm,
    per_user_metrics,
    verdict,
)
from analysis.stats import paired_runs
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


def _listing(rows: pd.DataFrame) -> str:
    items = [
        f"{label(r['mechanism'], MECHANISM_LABELS)} on {label(r['metric'], METRIC_LABELS)} "
        f"({fmt_pct(r['user_rel_pct'])} [{fmt_pct(r['user_rel_low_pct'])}, "
        f"{fmt_pct(r['user_rel_high_pct'])}])"
        for _, r in rows.iterrows()
    ]
    return ", ".join(items)


def block_summary(rows: pd.DataFrame, family: int) -> str:
    """One plain-language sentence group for one dataset x backbone x variant block."""
    mechanisms = rows[rows["mechanism"] != ORIGINAL]
    tested = mechanisms[mechanisms["verdict"].astype(str) != ""] if "verdict" in rows else rows[:0]
    seed_level = int(((mechanisms["p_ttest"] < ALPHA) | (mechanisms["p_wilcoxon"] < ALPHA)).sum())
    pairs = sorted({int(n) for n in mechanisms["n_pairs"] if n > 0})
    plural = "s" if pairs and pairs[-1] > 1 else ""
    seeds = f"{'/'.join(map(str, pairs))} seed pair{plural}" if pairs else "no seed pairs"
    text = (
        f"Over seeds ({seeds}), {seed_level} of {len(mechanisms)} cells reach p < {ALPHA} "
        "(uncorrected)."
    )
    if tested.empty:
        return text + " No per-user verdicts (no per-user ranks or no seed pairs)."
    better = tested[tested["verdict"] == BETTER]
    worse = tested[tested["verdict"] == WORSE]
    text += f" Per user (Holm over the table's {family} comparisons): "
    found = []
    if not better.empty:
        found.append(f"better: {_listing(better)}")
    if not worse.empty:
        found.append(f"worse: {_listing(worse)}")
    rest = len(tested) - len(better) - len(worse)
    found.append(f"no detectable difference in {rest} of {len(tested)} cells")
    return text + "; ".join(found) + "."


def summaries(numeric: pd.DataFrame, dataset_name: Callable[[str], str]) -> list[str]:
    """A markdown bullet per dataset x backbone x variant block of a Table 2 numeric frame."""
    family = int(np.isfinite(numeric["user_p"]).sum()) if "user_p" in numeric else 0
    lines = []
    blocks = numeric.groupby(["dataset", "backbone", "variant"], sort=False, dropna=False)
    for (dataset, backbone, variant), rows in blocks:
        head = f"**{label(backbone, BACKBONE_LABELS)}, {dataset_name(dataset)}"
        head += f" ({variant})**" if variant else "**"
        lines.append(f"- {head}: {block_summary(rows, family)}")
    return lines
