"""Table 2 and Table 3 from the runs: mean ± std over seeds, change vs the original of the same
variant over paired seeds, significance over seeds and per user (analysis/per_user.py), and the
paper's value next to ours. Each table comes as display cells and a numeric frame."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.markdown import MISSING, fmt_pct, to_markdown
from analysis.names import (
    BACKBONE_LABELS,
    MECHANISM_LABELS,
    METRIC_LABELS,
    ORIGINAL,
    TABLE2_METRICS,
    dataset_label,
    label,
    ordered_datasets,
)
from analysis.paper import table2_value, table3_value
from analysis.per_user import RanksOf, add_per_user, per_user_text
from analysis.runs import finished
from analysis.selection import VARIANT, final_stage, select_by_validation, sort_cells, with_variants
from analysis.stats import PairedTest, paired_test, paired_values, significance_marks
from awr.schema import TEST, metric_key

NO_ORIGINAL = "no original at these settings"
NO_PAIRS = "no seed shared with the original"
SUMMARY_COLUMNS: tuple[str, ...] = (
    "comparison",
    "metric",
    "mean",
    "std",
    "n",
    "rel_change_pct",
    "n_pairs",
    "p_ttest",
    "p_wilcoxon",
)
TABLE2_CELLS: tuple[str, ...] = ("dataset", "backbone", "mechanism")
TABLE3_CELLS: tuple[str, ...] = ("dataset", "num_layers", "backbone", "mechanism")


@dataclass(frozen=True)
class Table:
    """`cells`: display strings, one row per table row; `numeric`: one row per cell and metric."""

    cells: pd.DataFrame
    numeric: pd.DataFrame

    def markdown(self) -> str:
        return to_markdown(self.cells)


def table_runs(trials: pd.DataFrame, cell_columns: Sequence[str]) -> pd.DataFrame:
    """The runs a table uses: final stage, FINISHED only, a `variant` column (the settings a
    sweep varies besides `cell_columns`), one config per cell and variant by validation."""
    runs = with_variants(finished(final_stage(trials)), exclude=cell_columns)
    return select_by_validation(runs, [*cell_columns, VARIANT])


def _originals(runs: pd.DataFrame, cell: dict[str, object]) -> pd.DataFrame:
    mask = runs["mechanism"] == ORIGINAL
    for column, value in cell.items():
        if column != "mechanism":
            mask &= runs[column] == value
    return runs[mask]


def summarize(
    runs: pd.DataFrame, cell_columns: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """Per cell, variant and metric: mean, std (ddof=1; NaN for one seed), n, and for mechanism
    rows the comparison with the original of the same cell and variant over the seeds both
    have: % change of the mean over those seeds and paired tests over seeds. A mechanism row
    without original or without a shared seed gets no change and says why in `comparison`.
    `cell_columns` has `mechanism`; `runs` come from `table_runs`."""
    cells = [*cell_columns, VARIANT]
    records = []
    for key, group in runs.groupby(cells, sort=False, dropna=False):
        cell = dict(zip(cells, key, strict=True))
        originals = _originals(runs, cell)
        for metric in metrics:
            column = metric_key(metric, TEST)
            values = group[column].dropna() if column in group else pd.Series(dtype=float)
            n = int(values.size)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n > 1 else math.nan
            rel, test, why = math.nan, PairedTest(n=0), ""
            if cell["mechanism"] != ORIGINAL and n:
                if originals.empty or column not in originals:
                    why = NO_ORIGINAL
                else:
                    x, y = paired_values(group, originals, column)
                    if x.size:
                        base = float(y.mean())
                        rel = (float(x.mean()) - base) / base * 100 if base else math.nan
                        test = paired_test(x, y)
                    else:
                        why = NO_PAIRS
            records.append(
                {
                    **cell,
                    "comparison": why,
                    "metric": metric,
                    "mean": mean,
                    "std": std,
                    "n": n,
                    "rel_change_pct": rel,
                    "n_pairs": test.n,
                    "p_ttest": test.p_ttest,
                    "p_wilcoxon": test.p_wilcoxon,
                }
            )
    return pd.DataFrame(records, columns=[*cells, *SUMMARY_COLUMNS])


def add_paper(numeric: pd.DataFrame, lookup: Callable[[pd.Series], float | None]) -> pd.DataFrame:
    """Add `paper` (lookup of each row) and the paper's own % change vs its original row."""
    out = numeric.copy()
    out["paper"] = [_as_float(lookup(row)) for _, row in out.iterrows()]
    base = pd.Series([_as_float(lookup(_as_original(r))) for _, r in out.iterrows()], out.index)
    change = (out["paper"] - base) / base * 100
    out["paper_rel_change_pct"] = change.where(out["mechanism"] != ORIGINAL)
    return out


def _as_original(row: pd.Series) -> pd.Series:
    copy = row.copy()
    copy["mechanism"] = ORIGINAL
    return copy


def _as_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def cell_text(row: pd.Series) -> str:
    """`mean ± std (n=k), +x.x%*; per user +y.y% [lo, hi] verdict; paper v (+z.z%)`; the
    changes only for mechanism rows, a refused comparison's reason instead of its change."""
    n = int(row["n"])
    if n == 0:
        return MISSING
    spread = "0" if n == 1 else f"{row['std']:.4f}"
    parts = [f"{row['mean']:.4f} ± {spread} (n={n})"]
    mechanism_row = row["mechanism"] != ORIGINAL
    refused = row.get("comparison")
    if mechanism_row and isinstance(refused, str) and refused:
        parts.append(refused)
    elif mechanism_row and not pd.isna(row["rel_change_pct"]):
        marks = significance_marks(row["p_ttest"], row["p_wilcoxon"])
        parts.append(f"{fmt_pct(row['rel_change_pct'])}{marks}")
    text = ", ".join(parts)
    per_user = per_user_text(row) if mechanism_row else ""
    if per_user:
        text += f"; {per_user}"
    if not pd.isna(row["paper"]):
        paper = f"paper {row['paper']:.4f}"
        if mechanism_row and not pd.isna(row["paper_rel_change_pct"]):
            paper += f" ({fmt_pct(row['paper_rel_change_pct'])})"
        text += ("; " if per_user else ", ") + paper
    return text


def _pivot(
    numeric: pd.DataFrame,
    row_columns: Sequence[str],
    row_names: Callable[[tuple], dict[str, str]],
    col_columns: Sequence[str],
    col_keys: Sequence[tuple],
    col_name: Callable[[tuple], str],
) -> pd.DataFrame:
    """Display frame: one row per distinct `row_columns` value (in the order of the sorted
    numeric frame), one column per `col_keys` entry; absent cells show a dash."""
    texts = {
        (tuple(r[c] for c in row_columns), tuple(r[c] for c in col_columns)): cell_text(r)
        for _, r in numeric.iterrows()
    }
    row_keys = list(dict.fromkeys(k[0] for k in texts))
    records = [
        {**row_names(rk), **{col_name(ck): texts.get((rk, ck), MISSING) for ck in col_keys}}
        for rk in row_keys
    ]
    return pd.DataFrame(records)


def _has_variants(numeric: pd.DataFrame) -> bool:
    return bool((numeric[VARIANT].astype(str) != "").any()) if not numeric.empty else False


def table2(
    trials: pd.DataFrame, num_layers: int | None = None, ranks_of: RanksOf | None = None
) -> Table:
    """Table 2: rows backbone x variant x mechanism, columns dataset x {R@1, R@5, N@5}; test
    metrics at the best-validation epoch, from the final stage (`num_layers` restricts the
    runs). With `ranks_of` (run id -> UserRanks or None), per-user paired comparisons too."""
    if num_layers is not None:
        trials = trials[trials["num_layers"] == num_layers]
    runs = table_runs(trials, TABLE2_CELLS)
    numeric = summarize(runs, TABLE2_CELLS, TABLE2_METRICS)
    if ranks_of is not None:
        numeric = add_per_user(numeric, runs, ranks_of)
    numeric = add_paper(
        numeric, lambda r: table2_value(r["backbone"], r["mechanism"], r["dataset"], r["metric"])
    )
    numeric = sort_cells(numeric)
    col_keys = [(d, m) for d in ordered_datasets(numeric["dataset"]) for m in TABLE2_METRICS]
    rows = ["backbone", VARIANT, "mechanism"]
    if not _has_variants(numeric):
        rows.remove(VARIANT)

    def names(key: tuple) -> dict[str, str]:
        values = dict(zip(rows, key, strict=True))
        out = {"Backbone": label(values["backbone"], BACKBONE_LABELS)}
        if VARIANT in values:
            out["Settings"] = values[VARIANT] or "(not varied)"
        return out | {"Mechanism": label(values["mechanism"], MECHANISM_LABELS)}

    cells = _pivot(
        numeric,
        rows,
        names,
        ["dataset", "metric"],
        col_keys,
        lambda k: f"{dataset_label(k[0])} {label(k[1], METRIC_LABELS)}",
    )
    return Table(cells=cells, numeric=numeric)


def table3(trials: pd.DataFrame) -> Table:
    """Table 3: NDCG@5 by number of layers (rows) for each backbone x variant x mechanism
    (columns)."""
    runs = table_runs(trials, TABLE3_CELLS)
    numeric = summarize(runs, TABLE3_CELLS, ["ndcg_5"])
    numeric = add_paper(
        numeric,
        lambda r: table3_value(int(r["num_layers"]), r["backbone"], r["mechanism"], r["dataset"]),
    )
    numeric = sort_cells(numeric, extra=["num_layers"])
    pairs = sort_cells(numeric[["backbone", VARIANT, "mechanism"]].drop_duplicates())

    def name(key: tuple) -> str:
        backbone, variant, mechanism = key
        settings = f" ({variant})" if variant else ""
        return f"{label(backbone, BACKBONE_LABELS)}{settings} {label(mechanism, MECHANISM_LABELS)}"

    cells = _pivot(
        numeric,
        ["dataset", "num_layers"],
        lambda k: {"Dataset": dataset_label(k[0]), "Layers": str(k[1])},
        ["backbone", VARIANT, "mechanism"],
        list(pairs.itertuples(index=False, name=None)),
        name,
    )
    return Table(cells=cells, numeric=numeric)
