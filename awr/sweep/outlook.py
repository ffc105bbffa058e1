"""What a sweep's driver knows about the time: each running trial's epoch, best and elapsed time
(for the heartbeat lines), and the time left of the stage and of the sweep (for the line of
each finished trial). No Ray here: awr/sweep/progress.py feeds it from Tune's callbacks, and
the clock is injected, so tests drive it without sleeping.

How the time left is estimated (all in epochs of one Tune trial; a pack of seeds counts as one
trial, awr/eta.py has the formulas):
- pace: the seconds per epoch of the stage's trials, measured between each trial's first and
  latest report (Tune's `time_total_s`, which a resumed trial carries over), summed over the
  trials: sum(seconds between) / sum(epochs between); before any trial has two reports, its
  time over its epochs;
- start-up: what a trial spends before its first epoch (a Ray worker, imports, data, MLflow),
  the mean over trials that started here of (seconds at the first report - one epoch's pace);
  every pending trial adds it;
- epochs still to run: a running trial, up to the mean epochs of the stage's ended trials
  (early stopping and ASHA end most before the budget), at least one more; a pending trial,
  that mean; before any trial ended, the budget (`max_epochs`). The "at most" figure assumes
  every trial runs its full budget;
- trials side by side: as many as the resources allow (`slots`);
- the sweep: this stage plus every unit after it, each at the pace and mean epochs measured
  on the same dataset and backbone (else the latest measured), a pack of n seeds at n times
  the pace of one trial (an overestimate on GPUs, where packs are faster).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from awr.eta import format_duration, time_left, trial_epochs_left
from awr.schema import SEARCH_METRIC


@dataclass
class LastHeard:
    """One trial as the driver last heard of it (times on the driver's clock)."""

    first_seen: float
    beat: float  # the last heartbeat, or first_seen
    epoch: int = 0
    best: float = math.nan
    best_epoch: int = 0
    seconds: float = 0.0  # the trial's own time at its last result
    first: tuple[int, float] | None = None  # (epoch, seconds) at its first result here
    heard: float | None = None  # when that result came
    active: int | None = None  # a pack: members still training
    ended: bool = False
    failed: bool = False

    def elapsed(self, now: float) -> float:
        if self.heard is None:
            return now - self.first_seen
        return self.seconds + (now - self.heard)


@dataclass(frozen=True)
class PlannedUnit:
    """A unit as the sweep's time left needs it."""

    label: str
    cell: str  # dataset/backbone
    trials: int  # Tune trials
    pack: int = 1  # seeds trained as one Tune trial


@dataclass(frozen=True)
class Pace:
    seconds_per_epoch: float
    startup: float  # seconds before a trial's first epoch
    epochs: float = 0.0  # expected per trial (what ended trials ran)

    def epochs_left(self, epochs: float) -> float:
        """`epochs` of a trial yet to start, with its start-up counted in epochs."""
        return epochs + (self.startup / self.seconds_per_epoch if self.seconds_per_epoch else 0)


class SweepOutlook:
    """The units a sweep run still has (in order) and the pace measured on each cell."""

    def __init__(
        self,
        units: Sequence[PlannedUnit],
        budget: int,
        slots: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.units = list(units)
        self.budget = budget
        self.slots = slots
        self.clock = clock
        self.began = clock()
        self.paces: dict[str, Pace] = {}  # cell -> latest measurement
        self.latest: Pace | None = None

    def measure(self, unit: PlannedUnit, pace: Pace) -> None:
        """The pace of `unit`, kept per seed (a pack of n seeds: 1/n of its pace)."""
        measured = Pace(pace.seconds_per_epoch / unit.pack, pace.startup, pace.epochs)
        self.paces[unit.cell] = self.latest = measured

    def after(self, label: str) -> list[PlannedUnit]:
        labels = [unit.label for unit in self.units]
        return self.units[labels.index(label) + 1 :] if label in labels else []

    def left(self, label: str) -> tuple[float, float]:
        """(expected, at most) seconds of the units after `label`; inf where nothing was
        measured yet."""
        expected = most = 0.0
        for unit in self.after(label):
            measured = self.paces.get(unit.cell, self.latest)
            if measured is None:
                return math.inf, math.inf
            pace = Pace(measured.seconds_per_epoch * unit.pack, measured.startup)
            likely = pace.epochs_left(min(measured.epochs, self.budget))
            full = pace.epochs_left(self.budget)
            expected += time_left(pace.seconds_per_epoch, [likely] * unit.trials, self.slots)
            most += time_left(pace.seconds_per_epoch, [full] * unit.trials, self.slots)
        return expected, most


class StageProgress:
    """One unit's trials as the driver hears of them, its heartbeat lines and its time left.

    Heartbeat: a running trial gets a line every `interval` seconds (its first `interval`
    seconds after the driver first sees it), whatever its epochs take."""

    def __init__(
        self,
        unit: PlannedUnit,
        budget: int,
        slots: int,
        interval: float,
        outlook: SweepOutlook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unit = unit
        self.budget = budget
        self.slots = slots
        self.interval = interval
        self.outlook = outlook
        self.clock = clock
        self.began = clock()
        self.trials: dict[str, LastHeard] = {}

    def seen(self, trial_id: str) -> LastHeard:
        if trial_id not in self.trials:
            now = self.clock()
            self.trials[trial_id] = LastHeard(first_seen=now, beat=now)
        return self.trials[trial_id]

    def result(self, trial_id: str, result: Mapping[str, Any]) -> LastHeard:
        """A trial's report: its epoch, running best, own time and (packs) active members."""
        trial = self.seen(trial_id)
        trial.heard = self.clock()
        trial.epoch = int(result.get("epoch", trial.epoch) or 0)
        trial.best = float(result.get(SEARCH_METRIC, trial.best))
        trial.best_epoch = int(result.get("best_epoch", trial.best_epoch) or 0)
        trial.seconds = float(result.get("time_total_s", trial.elapsed(trial.heard)))
        if trial.first is None and trial.epoch > 0:
            trial.first = (trial.epoch, trial.seconds)
        if "members_active" in result:
            trial.active = int(result["members_active"])
        return trial

    def ended(self, trial_id: str, result: Mapping[str, Any] | None, failed: bool) -> None:
        """A trial that finished, was stopped or failed (`result`: its last report)."""
        trial = self.result(trial_id, result) if result else self.seen(trial_id)
        trial.ended, trial.failed = True, failed
        if self.outlook is not None and (pace := self.pace()) is not None:
            self.outlook.measure(self.unit, pace)

    def heartbeats(self, running: Mapping[str, str]) -> list[str]:
        """Lines for the running trials (`running`: trial id -> how to name it) whose last
        line is `interval` seconds old."""
        now = self.clock()
        lines = []
        for trial_id, name in running.items():
            trial = self.seen(trial_id)
            if now - trial.beat < self.interval:
                continue
            trial.beat = now
            text = f"{name} running: " + (f"epoch {trial.epoch}" if trial.epoch else "no epoch yet")
            text += f"/{self.budget}" if self.budget > 0 and trial.epoch else ""
            if math.isfinite(trial.best):
                text += f", best valid ndcg_5 {trial.best:.4f} @ {trial.best_epoch}"
            if trial.active is not None:
                text += f", {trial.active} of {self.unit.pack} seeds training"
            lines.append(f"{text}, {format_duration(trial.elapsed(now))}")
        return lines

    def pace(self) -> Pace | None:
        """Seconds per epoch and start-up of the stage's trials so far (None before any
        epoch), with the expected epochs per trial."""
        reported = [trial for trial in self.trials.values() if trial.first is not None]
        spans = [trial for trial in reported if trial.first and trial.epoch > trial.first[0]]
        if not reported:
            return None
        if not spans:  # one report each: start-up and epochs together
            per_epoch = sum(t.seconds for t in reported) / sum(t.epoch for t in reported)
            return Pace(per_epoch, 0.0, self.expected_epochs())
        seconds = sum(t.seconds - t.first[1] for t in spans if t.first)
        per_epoch = seconds / sum(t.epoch - t.first[0] for t in spans if t.first)
        started = [t.first[1] - per_epoch for t in reported if t.first and t.first[0] == 1]
        startup = fmean(max(s, 0.0) for s in started) if started else 0.0
        return Pace(per_epoch, startup, self.expected_epochs())

    def expected_epochs(self) -> float:
        """Mean epochs of the trials that ended without failing; the budget before any."""
        ran = [trial.epoch for trial in self.trials.values() if trial.ended and not trial.failed]
        return fmean(ran) if ran else float(self.budget)

    def left(self, running: Sequence[str], pending: int) -> tuple[float, float]:
        """(expected, at most) seconds until the stage ends, with `running` trial ids and
        `pending` trials not started; inf before any epoch was reported."""
        pace = self.pace()
        if pace is None or self.budget <= 0:
            return math.inf, math.inf
        epochs = [self.seen(trial_id).epoch for trial_id in running]
        likely = [trial_epochs_left(epoch, pace.epochs, self.budget) for epoch in epochs]
        likely += [pace.epochs_left(trial_epochs_left(0, pace.epochs, self.budget))] * pending
        full = [float(self.budget - epoch) for epoch in epochs]
        full += [pace.epochs_left(self.budget)] * pending
        per_epoch = pace.seconds_per_epoch
        return time_left(per_epoch, likely, self.slots), time_left(per_epoch, full, self.slots)

    def outlook_text(self, running: Sequence[str], pending: int) -> str:
        """`stage 12m05s elapsed, left ~1h10m (at most 3h20m)`, and the sweep's part when
        units follow this one."""
        now = self.clock()
        expected, most = self.left(running, pending)
        text = f"stage {format_duration(now - self.began)} elapsed, {left_text(expected, most)}"
        if self.outlook is None or not self.outlook.after(self.unit.label):
            return text
        later, later_most = self.outlook.left(self.unit.label)
        sweep = format_duration(now - self.outlook.began)
        return f"{text} | sweep {sweep} elapsed, {left_text(expected + later, most + later_most)}"


def left_text(expected: float, most: float) -> str:
    if not math.isfinite(expected):
        return "left n/a (no epoch yet)"
    if not math.isfinite(most) or round(most) == round(expected):
        return f"left ~{format_duration(expected)}"
    return f"left ~{format_duration(expected)} (at most {format_duration(most)})"
