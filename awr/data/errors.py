"""The one exception type of the data layer."""

from __future__ import annotations

from pathlib import Path

from awr.errors import AwrError


class DataError(AwrError):
    """A data file is missing, unreadable or malformed.

    The message always names the file, and the 1-based line number where one line is at fault.
    """


def data_error(path: str | Path, reason: str, line: int | None = None) -> DataError:
    """Build a DataError whose message reads `<path>, line <n>: <reason>` (or without the line)."""
    where = f"{path}" if line is None else f"{path}, line {line}"
    return DataError(f"{where}: {reason}")
