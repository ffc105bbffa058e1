"""The harness's records: BenchRecord (every JSON key, declared once), ratios across records,
the printed table and the JSON file.

A record's JSON object holds BenchRecord's required fields (`BenchRecord.required_keys()`),
plus `packed_trials`, `packed_sequences_per_second` and `packed_speedup` with `--packed`, plus
`ratio_to_none` (train seconds / the `none` mechanism's at the same backbone, dataset and
max_len) when `none` was measured. Seconds are wall seconds of a full epoch or evaluation pass,
memory is MiB, throughputs are per second. No torch import here: analysis reads the keys.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awr.files import write_text_atomic


@dataclass(frozen=True)
class BenchRecord:
    """One configuration's figures (awr/bench/measure.py says how each is measured)."""

    backbone: str
    mechanism: str
    dataset: str
    max_len: int
    hidden_size: int
    num_layers: int
    device: str
    length_groups: int  # as the trainer resolved it (never 0 = auto)
    num_params: int
    extra_params: int  # num_params minus the same backbone's without a mechanism
    train_seconds_per_epoch: float  # median, scaled to a full epoch
    sequences_per_second: float  # full training rows / train_seconds_per_epoch
    eval_seconds: float  # median, scaled to a full validation pass
    users_per_second: float
    peak_memory_mb: float
    torch_version: str
    epochs_timed: int
    threads: int  # torch.get_num_threads()
    scaled: bool  # timed on a subset of the rows or users (--max-steps, --max-eval-batches)
    # `--packed N` (awr/bench/packed.py): N trials side by side, their aggregate sequences/s
    packed_trials: int | None = None
    packed_sequences_per_second: float | None = None
    packed_speedup: float | None = None  # packed_sequences_per_second / sequences_per_second
    ratio_to_none: float | None = None  # set on the JSON objects by add_ratios

    @classmethod
    def required_keys(cls) -> tuple[str, ...]:
        """The keys every record has: the fields without a default, in JSON order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: every required key, the optional ones only where set."""
        values = dataclasses.asdict(self)
        required = self.required_keys()
        return {k: v for k, v in values.items() if k in required or v is not None}


def add_ratios(records: list[dict[str, Any]]) -> None:
    """ratio_to_none on every record whose (backbone, dataset, max_len) has a `none` record."""
    base = {
        (r["backbone"], r["dataset"], r["max_len"]): r["train_seconds_per_epoch"]
        for r in records
        if r["mechanism"] == "none"
    }
    for record in records:
        key = (record["backbone"], record["dataset"], record["max_len"])
        if key in base:
            record["ratio_to_none"] = record["train_seconds_per_epoch"] / base[key]


COLUMNS: tuple[tuple[str, str, str], ...] = (  # (heading, key, format)
    ("backbone", "backbone", "{}"),
    ("mechanism", "mechanism", "{}"),
    ("dataset", "dataset", "{}"),
    ("L", "max_len", "{}"),
    ("groups", "length_groups", "{}"),
    ("params", "num_params", "{:,}"),
    ("extra", "extra_params", "{:,}"),
    ("s/epoch", "train_seconds_per_epoch", "{:.2f}"),
    ("seq/s", "sequences_per_second", "{:.0f}"),
    ("x none", "ratio_to_none", "{:.2f}"),
    ("eval s", "eval_seconds", "{:.2f}"),
    ("users/s", "users_per_second", "{:.0f}"),
    ("peak MB", "peak_memory_mb", "{:.0f}"),
    ("packed seq/s", "packed_sequences_per_second", "{:.0f}"),
    ("packed x", "packed_speedup", "{:.2f}"),
    ("scaled", "scaled", "{}"),
)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table; columns no record has are left out."""
    columns = [c for c in COLUMNS if any(c[1] in r for r in records)]
    rows = [[c[0] for c in columns]]
    for record in records:
        rows.append([fmt.format(record[key]) if key in record else "-" for _, key, fmt in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(path: Path, records: Any) -> None:
    """Write `records` as indented JSON atomically (a temporary file, then a rename), creating
    the parent folder."""
    write_text_atomic(path, json.dumps(records, indent=2) + "\n")
