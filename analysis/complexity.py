"""The complexity table from `python -m awr.bench` records: parameters counted vs the paper's
formula, training and evaluation time, peak memory."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.markdown import fmt_number
from analysis.names import BACKBONE_LABELS, MECHANISM_LABELS, ORIGINAL, dataset_label, label
from analysis.runs import AnalysisError
from analysis.selection import sort_cells
from analysis.tables import Table
from awr.bench.record import BenchRecord
from awr.models.refine import REFINEMENTS, extra_parameters

BENCH_KEYS = BenchRecord.required_keys()  # the harness's own record keys, one list for both
_SETTING = ["backbone", "dataset", "max_len", "hidden_size", "num_layers", "device"]


def paper_extra_params(
    mechanism: str,
    max_len: int,
    num_layers: int,
    num_heads: int = 1,
    refine_per_head: bool = False,
) -> int | None:
    """Extra parameters by the paper's formula, k L^2 per layer for a mechanism of k L x L
    matrices (times heads when the refinement is per head; `extra_parameters`); None for an
    unknown mechanism."""
    if mechanism not in REFINEMENTS:
        return None
    return extra_parameters(mechanism, max_len, num_layers, num_heads, refine_per_head)


def load_bench(path: Path) -> list[dict[str, Any]]:
    """Read the benchmark JSON (a list of records); a clear AnalysisError when it is not one."""
    try:
        records = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AnalysisError(f"cannot read benchmark JSON {path}: {error}") from error
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise AnalysisError(f"benchmark JSON {path} must be a list of records (JSON objects)")
    missing = sorted({k for r in records for k in ("backbone", "mechanism") if k not in r})
    if missing:
        raise AnalysisError(f"benchmark JSON {path}: records lack {', '.join(missing)}")
    return records


def complexity_numeric(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per benchmark record, with the paper's extra-parameter formula next to the count.
    A record without `extra_params` gets num_params minus the original's at the same setting."""
    frame = pd.DataFrame([{k: r.get(k) for k in BENCH_KEYS} | dict(r) for r in records])
    frame = frame.reindex(columns=list(dict.fromkeys([*BENCH_KEYS, *frame.columns])))
    originals = frame[frame["mechanism"] == ORIGINAL].set_index(_SETTING)["num_params"]
    originals = originals[~originals.index.duplicated()]

    def counted(row: pd.Series) -> float:
        if not pd.isna(row["extra_params"]):
            return float(row["extra_params"])
        base = originals.get(tuple(row[c] for c in _SETTING), math.nan)
        return float(row["num_params"]) - float(base)

    def formula(row: pd.Series) -> float:
        heads = row.get("num_heads")
        value = paper_extra_params(
            str(row["mechanism"]),
            int(row["max_len"]),
            int(row["num_layers"]),
            int(heads) if not pd.isna(heads) else 1,
            bool(row.get("refine_per_head") or False),
        )
        return math.nan if value is None else float(value)

    if not frame.empty:
        frame["extra_params"] = frame.apply(counted, axis=1)
        frame["paper_extra_params"] = frame.apply(formula, axis=1)
        frame["extra_minus_paper"] = frame["extra_params"] - frame["paper_extra_params"]
    return sort_cells(frame, extra=["max_len", "hidden_size", "num_layers", "device"])


def _int(value: object) -> str:
    return fmt_number(int(value)) if not pd.isna(value) else fmt_number(None)


def complexity_table(records: Sequence[Mapping[str, Any]]) -> Table:
    """Display and numeric frames of the complexity table."""
    numeric = complexity_numeric(records)
    cells = pd.DataFrame(
        {
            "Backbone": [label(b, BACKBONE_LABELS) for b in numeric["backbone"]],
            "Mechanism": [label(m, MECHANISM_LABELS) for m in numeric["mechanism"]],
            "Dataset": [dataset_label(str(d)) for d in numeric["dataset"]],
            "L": [_int(v) for v in numeric["max_len"]],
            "d": [_int(v) for v in numeric["hidden_size"]],
            "Layers": [_int(v) for v in numeric["num_layers"]],
            "Device": [str(v) for v in numeric["device"]],
            "Params": [_int(v) for v in numeric["num_params"]],
            "Extra (counted)": [_int(v) for v in numeric.get("extra_params", [])],
            "Extra (paper k·L²·layers)": [_int(v) for v in numeric.get("paper_extra_params", [])],
            "Train s/epoch": [fmt_number(v, 2) for v in numeric["train_seconds_per_epoch"]],
            "Eval s": [fmt_number(v, 2) for v in numeric["eval_seconds"]],
            "Peak MB": [fmt_number(v, 1) for v in numeric["peak_memory_mb"]],
        }
    )
    return Table(cells=cells, numeric=numeric)
