"""Small formatting helpers: numbers to text, DataFrames to GitHub-flavoured markdown tables."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

MISSING = "–"


def is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_number(value: object, digits: int = 4) -> str:
    """Integers with thousands separators, other numbers with `digits` decimals, missing as -."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{float(value):.{digits}f}"


def fmt_pct(value: float) -> str:
    """A relative change in percent with its sign, e.g. +3.8%."""
    if is_missing(value) or math.isinf(value):
        return MISSING
    return f"{value:+.1f}%"


def escape(text: str) -> str:
    """Escape the characters that markdown would read as table or emphasis syntax."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def _cell(value: object) -> str:
    text = MISSING if is_missing(value) else str(value)
    return escape(text).replace("\n", " ")


def to_markdown(frame: pd.DataFrame) -> str:
    """A markdown table of `frame` (index dropped); cells are str() of the values."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body])
