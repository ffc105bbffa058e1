"""The operator's lines instead of Ray's tables, one line per event (no carriage returns, so a
log file reads as the terminal did):
- each finished trial: its result, epochs and time, the counts of done / running / pending
  trials, the best validation NDCG@5 so far, the stage's elapsed time and time left, and the
  sweep's (how they are estimated: awr/sweep/outlook.py);
- a heartbeat per running trial every HEARTBEAT_SECONDS: its epoch of the budget, its best
  validation NDCG@5 so far and its elapsed time.
The same callback keeps the trial statuses Tune last stepped with, which tell a completed
experiment from an interrupted one (after an interruption Tune marks the stopped trials
TERMINATED).

Tuner.restore rebuilds the callback from its pickle, so everything but the label and the trial
count lives here, on the driver, keyed by the unit's label: the runner registers the sweep's
units (`plan_sweep`) and the stage each unit's StageProgress (`watch`) before Tune runs.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from awr.eta import format_duration
from awr.sweep.outlook import PlannedUnit, StageProgress, SweepOutlook
from awr.sweep.plan import Unit
from awr.sweep.spec import SweepError
from awr.sweep.trainable import SEARCH_METRIC

HEARTBEAT_SECONDS = 60.0  # a line per running trial this often (AWR_HEARTBEAT_SECONDS overrides)
FINAL = (Trial.TERMINATED, Trial.ERROR)
# label -> trial id -> status, as of the last step; the driver reads the statuses here.
STATUSES: dict[str, dict[str, str]] = {}
WATCHES: dict[str, StageProgress] = {}  # label -> the unit's progress, on the driver
OUTLOOK: list[SweepOutlook] = []  # the sweep run's units, when a runner registered them


def heartbeat_seconds() -> float:
    """HEARTBEAT_SECONDS, or the environment variable AWR_HEARTBEAT_SECONDS (0: no heartbeat)."""
    value = os.environ.get("AWR_HEARTBEAT_SECONDS", "").strip()
    try:
        seconds = float(value) if value else HEARTBEAT_SECONDS
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise SweepError(f"AWR_HEARTBEAT_SECONDS must be seconds >= 0 (0: none), got {value!r}")
    return seconds if seconds > 0 else math.inf


def planned(unit: Unit) -> PlannedUnit:
    """A unit as the time left sees it: its Tune trials, a pack of seeds as one."""
    pack = len(unit.seeds) if unit.packed else 1
    return PlannedUnit(unit.label, f"{unit.dataset}/{unit.backbone}", unit.tune_trials, pack)


def plan_sweep(
    units: list[Unit], budget: int, slots: int, clock: Callable[[], float] = time.monotonic
) -> SweepOutlook:
    """Register the units a sweep run is about to run (in order), for the sweep's time left
    (its clock starts now); a bad AWR_HEARTBEAT_SECONDS is an error here, before any unit."""
    heartbeat_seconds()
    OUTLOOK[:] = [SweepOutlook([planned(unit) for unit in units], budget, slots, clock)]
    return OUTLOOK[0]


def watch(
    unit: PlannedUnit, budget: int, slots: int, clock: Callable[[], float] = time.monotonic
) -> StageProgress:
    """Register a unit's progress before its Tuner runs (its clock starts now): `budget` the
    epochs of a trial at most, `slots` the trials side by side."""
    outlook = OUTLOOK[0] if OUTLOOK else None
    progress = StageProgress(unit, budget, slots, heartbeat_seconds(), outlook, clock)
    WATCHES[unit.label] = progress
    return progress


class ProgressLines(Callback):
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.best = -math.inf
        self.steps = 0

    def progress(self) -> StageProgress:
        """The unit's registered progress (a default one where none was: budget unknown)."""
        if self.label not in WATCHES:
            watch(PlannedUnit(self.label, "", self.total), budget=0, slots=1)
        return WATCHES[self.label]

    def setup(self, **info: Any) -> None:
        STATUSES.pop(self.label, None)
        self.steps = 0

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.steps += 1
        STATUSES[self.label] = {trial.trial_id: trial.status for trial in trials}
        progress = self.progress()
        for trial in trials:  # trials that ended before a resume count for the time left
            if trial.status == Trial.TERMINATED and not progress.seen(trial.trial_id).ended:
                progress.ended(trial.trial_id, trial.last_result, failed=False)
        running = {t.trial_id: self._name(t) for t in trials if t.status == Trial.RUNNING}
        for line in progress.heartbeats(running):
            self._print(line)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        self.progress().result(trial.trial_id, result)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self.steps == 0:  # a restored experiment that had nothing left to run
            STATUSES[self.label] = {trial.trial_id: trial.status for trial in trials}

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        result = trial.last_result or {}
        self.progress().ended(trial.trial_id, result, failed=False)
        value = result.get(SEARCH_METRIC)
        epochs = result.get("epoch", "?")
        if value is not None and math.isfinite(value):
            self.best = max(self.best, value)
        shown = f"{value:.4f}" if isinstance(value, float) else "n/a"
        took = self.progress().seen(trial.trial_id).elapsed(self.progress().clock())
        text = f"{self._name(trial)}: valid ndcg_5 {shown} after {epochs} epochs in "
        self._line(trials, trial, text + format_duration(took), failed=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.progress().ended(trial.trial_id, trial.last_result, failed=True)
        self._line(trials, trial, f"{self._name(trial)} FAILED (see its MLflow run)", failed=True)

    def _name(self, trial: Trial) -> str:
        values = " ".join(f"{k}={v}" for k, v in sorted(trial.config.items()))
        return f"trial {trial.trial_id} ({values})"

    def _line(self, trials: list[Trial], current: Trial, text: str, failed: bool) -> None:
        others = [trial for trial in trials if trial is not current]
        done = 1 + sum(trial.status in FINAL for trial in others)
        errors = int(failed) + sum(trial.status == Trial.ERROR for trial in others)
        running = [trial.trial_id for trial in others if trial.status == Trial.RUNNING]
        pending = max(self.total - done - len(running), 0)
        best = f"{self.best:.4f}" if math.isfinite(self.best) else "n/a"
        outlook = self.progress().outlook_text(running, pending)
        self._print(
            f"{text} | done {done}/{self.total} (failed {errors}), running {len(running)}, "
            f"pending {pending} | best valid ndcg_5 {best} | {outlook}"
        )

    def _print(self, text: str) -> None:
        print(f"[{self.label}] {text}", file=sys.stdout, flush=True)


def completed(label: str, planned: int) -> bool:
    """Whether every planned trial of the experiment `label` ended (finished, stopped or failed)
    at its last step; False after an interruption."""
    statuses = STATUSES.get(label, {})
    return len(statuses) >= planned and all(status in FINAL for status in statuses.values())
