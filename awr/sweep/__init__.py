"""Sweeps: Ray Tune + Optuna stages over the trials of `awr.trial`, tracked in MLflow.

    run_sweep(SweepOptions(name="quick", out=Path("runs").resolve()))

Modules: spec (what a sweep is), plan (units and trial counts), runner (the sweep loop),
stage (one Tuner per unit), trainable (inside a trial), pack_trainable (inside a pack of
seeds), search (Optuna, stopper, ASHA), cluster (Ray start and resources), processes
(leftovers of killed drivers), folder (the output folder's lock, space checks and storage
faults), state (resume), progress (the operator's lines), options (the operator's overrides:
seeds, datasets, ...), preflight (datasets and resources checked before anything starts; the
--dry-run text). Ray is imported only once a sweep runs.
"""

from awr.sweep.options import SweepOptions
from awr.sweep.runner import execute, run_sweep
from awr.sweep.spec import (
    Axis,
    Budget,
    Cell,
    Resources,
    Search,
    Sweep,
    SweepError,
    cells_for,
)

__all__ = [
    "Axis",
    "Budget",
    "Cell",
    "Resources",
    "Search",
    "Sweep",
    "SweepError",
    "SweepOptions",
    "cells_for",
    "execute",
    "run_sweep",
]
