"""The operator's choices for one `--sweep` run (the command line fills them in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepOptions:
    """name: a sweep in `sweeps/` or `module:attribute`; out: absolute output folder;
    resume: continue an interrupted sweep in `out`; dry_run: print the plan only;
    address: attach to a Ray cluster instead of starting one; tracking_uri: MLflow store
    (default: sqlite in `out`); gpus_per_trial: overrides the sweep's GPU fraction (0 = CPU);
    data_dir: dataset folder (default: $AWR_DATA_DIR, else ~/.cache/awr/data); seeds: stage-2
    seeds instead of the sweep's (with --resume, adds seeds to a finished sweep: new seeds are
    new units); pack_seeds, checkpoint_seconds: override the sweep's (None: keep them)."""

    name: str
    out: Path
    resume: bool = False
    dry_run: bool = False
    address: str | None = None
    tracking_uri: str | None = None
    gpus_per_trial: float | None = None
    data_dir: str | None = None
    seeds: tuple[int, ...] | None = None
    pack_seeds: bool | None = None
    checkpoint_seconds: float | None = None
