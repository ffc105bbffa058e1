"""Sweeps: Ray Tune + Optuna stages over the trials of `awr.trial`, tracked in MLflow.

    run_sweep(load_sweep("quick"), SweepOptions(name="quick", out=Path("runs").resolve()))

(`load_sweep` is in the top-level `sweeps` package, which holds the definitions.) Modules, in
the order a sweep meets them: spec (what a sweep is, its search space read without Optuna),
plan (units and trial counts), options (the operator's overrides: seeds, datasets, ...; the
checks before anything starts and the --dry-run text), runner (the sweep loop), folder (the
output folder's lock, space checks and storage faults), state (resume), cluster (environment,
Ray start and stop, trial resources), processes (Ray processes a killed driver left), unit (one
Tuner per unit), search (Optuna, stopper, ASHA), trainable (inside a trial), pack_trainable
(inside a pack of seeds), naming (run names), progress and outlook (the operator's lines, time
left). Ray is imported only once a sweep runs.
"""

from awr.sweep.options import SweepOptions
from awr.sweep.runner import run_sweep
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
    "run_sweep",
]
