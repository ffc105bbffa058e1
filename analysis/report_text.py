"""The text of report.md from already computed tables and figure entries (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.convergence import convergence_cells, convergence_summary
from analysis.markdown import escape, fmt_pct, to_markdown
from analysis.names import BACKBONE_LABELS, MECHANISM_LABELS, METRIC_LABELS, ORIGINAL, label
from analysis.paired import BETTER, CONFIDENCE, RESAMPLES, WORSE
from analysis.paper import ARXIV_ID, PAPER, TABLE2_SOURCE, TABLE3_SOURCE
from analysis.stats import ALPHA, MIN_PAIRS_TTEST, MIN_PAIRS_WILCOXON, TTEST_MARK, WILCOXON_MARK
from analysis.tables import Table
from awr.schema import FAILED, FINISHED


@dataclass(frozen=True)
class FigureEntry:
    """A figure of the report: its file name when drawn, else why it was skipped."""

    number: int
    title: str
    file: str | None
    note: str = ""


@dataclass(frozen=True)
class ReportContent:
    sweep: str
    tracking_uri: str
    date: str
    counts: dict[str, int]
    table2: Table
    table2_note: str = ""
    per_user_note: str = ""
    summaries: Sequence[str] = ()
    forest: str | None = None
    seed_check: pd.DataFrame | None = None
    convergence: pd.DataFrame | None = None
    table3: Table | None = None
    complexity: Table | None = None
    figures: Sequence[FigureEntry] = ()
    facts: Sequence[str] = field(default_factory=tuple)


def _counts_line(counts: dict[str, int]) -> str:
    done = counts.get(FINISHED, 0)
    failed = counts.get(FAILED, 0)
    others = {k: v for k, v in counts.items() if k not in (FINISHED, FAILED)}
    text = f"{done} finished, {failed} failed"
    if others:
        text += ", " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(others.items()))
    return text + " (only finished runs count)"


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


def seed_check_lines(check: pd.DataFrame) -> list[str]:
    """The seed-to-seed section: how often the per-user test separates two seeds of the same
    original (per_user.seed_to_seed), with a row per seed pair."""
    if check is None or check.empty:
        return []
    hits = int((check["user_p"] < ALPHA).sum())
    metric = label(str(check["metric"].iloc[0]), METRIC_LABELS)
    rows = pd.DataFrame(
        {
            "Backbone": [label(b, BACKBONE_LABELS) for b in check["backbone"]],
            "Settings": [v or "(not varied)" for v in check["variant"]],
            "Seeds": [f"{a} vs {b}" for a, b in zip(check["seed_a"], check["seed_b"], strict=True)],
            f"{metric} change [CI]": [
                f"{fmt_pct(r['user_rel_pct'])} [{fmt_pct(r['user_rel_low_pct'])}, "
                f"{fmt_pct(r['user_rel_high_pct'])}]"
                for _, r in check.iterrows()
            ],
            "p (raw)": [f"{p:.4f}" for p in check["user_p"]],
        }
    )
    if not (check["variant"].astype(str) != "").any():
        rows = rows.drop(columns="Settings")
    return [
        "### Seed-to-seed check: the original against itself",
        "",
        "The per-user CI and test condition on the trained models: they measure which users "
        "were sampled, not how much training seeds move a model. Here each original is compared, "
        f"with the same per-user test, with itself at another seed (one seed each, {metric}): "
        f"{hits} of {len(check)} seed pairs differ at p < {ALPHA}. Where this happens often, a "
        "per-user verdict can come from training noise alone; more seeds shrink it.",
        "",
        to_markdown(rows),
        "",
        "Numbers: [seed_check.csv](seed_check.csv)",
        "",
    ]


def convergence_lines(table: pd.DataFrame | None) -> list[str]:
    """The training-to-convergence section (analysis/convergence.py)."""
    if table is None or table.empty:
        return []
    return [
        "## Training to convergence",
        "",
        f"Table 2's runs, per cell: {convergence_summary(table)} A trial that ran the whole "
        "budget was stopped by it, not by patience, and may not have converged. Minutes and "
        "seconds count the training and validation the trial computed (a trial resumed across "
        "sittings counts no waiting).",
        "",
        to_markdown(convergence_cells(table)),
        "",
        "Numbers: [convergence.csv](convergence.csv)",
        "",
    ]


def legend() -> list[str]:
    return [
        "## Legend",
        "",
        "- Cells: mean ± sample standard deviation (ddof=1) of the test metric over seeds, "
        "with n the number of seeds (± 0 when n=1); then the relative change of the mean vs "
        "the original of the same backbone, settings and variant, over the seeds both have; "
        "then the per-user comparison; then the paper's value and, for mechanism rows, the "
        "paper's own relative change vs its original.",
        "- Like with like: a mechanism is only compared with the original at the same settings "
        "(the same variant: a sweep that varies e.g. `stosa_released_code` gets a block of rows "
        "per value). Without such an original, or without a seed both ran, the cell says so "
        "instead of printing a change.",
        f"- Per user: every test user is scored by both models on the same target. For each "
        "seed both ran, the mechanism's run is paired with the original's of that seed; a "
        "user's differences of the metric are averaged over those seeds and users are the "
        f"unit. `per user +x% [lo, hi]`: change of the mean over users vs the original's mean, "
        f"with a {CONFIDENCE:.0%} paired percentile bootstrap CI over users ({RESAMPLES:,} "
        "resamples, seeded per comparison). Verdict: two-sided paired sign-flip permutation "
        f"test ({RESAMPLES:,} resamples, exact when fewer sign patterns), Holm-Bonferroni "
        f"corrected across all per-user comparisons of the table (every row, dataset and "
        f"metric); `better` / `worse` when the corrected p < {ALPHA}, otherwise `no detectable "
        "difference`. The CI is per comparison (uncorrected). Both treat the trained models as "
        "fixed: they measure the sampling of users, not the spread between training seeds "
        "(the seed-level columns and the seed-to-seed check show that). Raw and corrected "
        "p-values, differences in metric units and user counts are in table2.csv.",
        "- Test metrics are each trial's scores at its best-validation epoch (early stopping on "
        "validation NDCG@5; test scored once). Where a cell holds several configs, the one "
        "with the highest mean validation NDCG@5 is shown. Nothing is chosen by test metrics.",
        f"- {escape(TTEST_MARK)}: paired two-sided t-test (scipy.stats.ttest_rel) of mechanism vs "
        f"original over seeds, p < {ALPHA}, computed with at least {MIN_PAIRS_TTEST} pairs.",
        f"- {WILCOXON_MARK}: paired two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon), "
        f"p < {ALPHA}, computed only with at least {MIN_PAIRS_WILCOXON} pairs.",
        "- Pairs: runs with the same seed, dataset, backbone, stage and config apart from the "
        "mechanism's own options (mechanism, refine_per_head, additive_mix) and execution-only "
        "ones (device, eval_batch_size, compile, length_groups). p-values are in the CSV files. "
        "The seed-level marks are not corrected for multiple comparisons.",
        "- A dash marks a cell without data. The paper reports single runs without variance.",
    ]


def _figures(entries: Sequence[FigureEntry]) -> list[str]:
    lines = ["## Figures", ""]
    for entry in entries:
        if entry.file:
            lines += [f"### Figure {entry.number}: {entry.title}", ""]
            lines += [f"![Figure {entry.number}]({entry.file})", ""]
            if entry.note:
                lines += [entry.note, ""]
    skipped = [e for e in entries if not e.file]
    if skipped:
        lines += ["Skipped figures:", ""]
        lines += [f"- Figure {e.number} ({e.title}): {e.note}" for e in skipped]
        lines.append("")
    return lines


def render_report(content: ReportContent) -> str:
    """report.md: header facts, Table 2, Table 3, complexity, figures, legend, source."""
    lines = [
        f"# AWRSR reproduction report: sweep `{content.sweep}`",
        "",
        f"- Date: {content.date}",
        f"- Tracking URI: `{content.tracking_uri}` (experiment `{content.sweep}`)",
        f"- Trial runs: {_counts_line(content.counts)}",
        *[f"- {fact}" for fact in content.facts],
        "",
        "## Table 2: Recall@1, Recall@5, NDCG@5 (test)",
        "",
    ]
    if content.table2_note:
        lines += [content.table2_note, ""]
    if content.per_user_note:
        lines += [content.per_user_note, ""]
    lines += [content.table2.markdown(), "", "Numbers: [table2.csv](table2.csv)", ""]
    if content.summaries or content.forest:
        lines += ["### In plain words", "", *content.summaries, ""]
    if content.forest:
        lines += [
            "### Per-user comparisons: forest plot",
            "",
            f"![Per-user forest plot]({content.forest})",
            "",
            f"One row per comparison: the change vs the original with its {CONFIDENCE:.0%} CI; "
            "green = better, red = worse, grey = no detectable difference (Holm-corrected).",
            "",
        ]
    lines += seed_check_lines(content.seed_check)
    lines += convergence_lines(content.convergence)
    if content.table3 is not None:
        lines += ["## Table 3: NDCG@5 (test) by number of layers", ""]
        lines += [content.table3.markdown(), "", "Numbers: [table3.csv](table3.csv)", ""]
    if content.complexity is not None:
        lines += [
            "## Complexity (benchmark)",
            "",
            "L = maximum sequence length, d = hidden size, device as benchmarked. Extra "
            "(counted) = parameters beyond the original backbone at the same setting; extra "
            "(paper) = k·L²·layers with k = 2 (simple), 3 (value), 2 (additive), "
            "2 (stochastic), times heads when the refinement is per head (records that do not say "
            "so are taken as shared across heads).",
            "",
            content.complexity.markdown(),
            "",
            "Numbers: [complexity.csv](complexity.csv)",
            "",
        ]
    lines += _figures(content.figures)
    lines += legend()
    lines += [
        "",
        "## Source of the paper's values",
        "",
        f"{PAPER}, arXiv {ARXIV_ID} (https://arxiv.org/abs/{ARXIV_ID}): "
        f"{TABLE2_SOURCE.rsplit(', ', 1)[-1]} and {TABLE3_SOURCE.rsplit(', ', 1)[-1]}, "
        "values as printed.",
        "",
    ]
    return "\n".join(lines)
