"""One line per finished trial instead of Ray's tables: the trial, its result, the counts of
done / running / pending trials and the best validation NDCG@5 so far. The same callback keeps
the trial statuses Tune last stepped with, which tell a completed experiment from an
interrupted one (after an interruption Tune marks the stopped trials TERMINATED)."""

from __future__ import annotations

import math
import sys
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from awr.sweep.trainable import SEARCH_METRIC

FINAL = (Trial.TERMINATED, Trial.ERROR)
# label -> trial id -> status, as of the last step. Tuner.restore rebuilds the callback from its
# pickle, so the driver reads the statuses here rather than from its own callback object.
STATUSES: dict[str, dict[str, str]] = {}


class ProgressLines(Callback):
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.best = -math.inf
        self.steps = 0

    def setup(self, **info: Any) -> None:
        STATUSES.pop(self.label, None)
        self.steps = 0

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self.steps += 1
        STATUSES[self.label] = {trial.trial_id: trial.status for trial in trials}

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        if self.steps == 0:  # a restored experiment that had nothing left to run
            STATUSES[self.label] = {trial.trial_id: trial.status for trial in trials}

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        value = (trial.last_result or {}).get(SEARCH_METRIC)
        epochs = (trial.last_result or {}).get("epoch", "?")
        if value is not None and math.isfinite(value):
            self.best = max(self.best, value)
        shown = f"{value:.4f}" if isinstance(value, float) else "n/a"
        text = f"{self._name(trial)}: valid ndcg_5 {shown} after {epochs} epochs"
        self._line(trials, trial, text, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._line(trials, trial, f"{self._name(trial)} FAILED (see its MLflow run)", failed=True)

    def _name(self, trial: Trial) -> str:
        values = " ".join(f"{k}={v}" for k, v in sorted(trial.config.items()))
        return f"trial {trial.trial_id} ({values})"

    def _line(self, trials: list[Trial], current: Trial, text: str, failed: bool) -> None:
        others = [trial for trial in trials if trial is not current]
        done = 1 + sum(trial.status in FINAL for trial in others)
        errors = int(failed) + sum(trial.status == Trial.ERROR for trial in others)
        running = sum(trial.status == Trial.RUNNING for trial in others)
        pending = max(self.total - done - running, 0)
        best = f"{self.best:.4f}" if math.isfinite(self.best) else "n/a"
        print(
            f"[{self.label}] {text} | done {done}/{self.total} (failed {errors}), "
            f"running {running}, pending {pending} | best valid ndcg_5 {best}",
            file=sys.stdout,
            flush=True,
        )


def completed(label: str, planned: int) -> bool:
    """Whether every planned trial of the experiment `label` ended (finished, stopped or failed)
    at its last step; False after an interruption."""
    statuses = STATUSES.get(label, {})
    return len(statuses) >= planned and all(status in FINAL for status in statuses.values())
