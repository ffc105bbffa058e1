"""The function Ray Tune runs for every trial: build the config, open (or reattach) the trial's
MLflow run, train with `run_trial`, report each epoch to Tune (with a checkpoint at most every
`checkpoint_seconds` and after the last epoch), and end the run FINISHED, FAILED (with the
error) or KILLED (stopped by Tune). Packs of seeds: awr/sweep/pack_trainable.py."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from awr.config import ConfigError, TrialConfig, from_dict
from awr.data.errors import DataError
from awr.schema import FAILED, FINISHED, KILLED, SEARCH_METRIC  # the running best
from awr.sweep.naming import trial_run_name
from awr.sweep.spec import typed_values
from awr.tracking import TrialRun, trial_run_tags
from awr.train.trainer import EpochRecord
from awr.trial import TrialResult, planned_length_groups, run_trial

CHECKPOINT_FILE = "state.pt"


@dataclass(frozen=True)
class UnitJob:
    """What every trial of a unit needs besides its own values (passed with
    `tune.with_parameters`)."""

    sweep: str
    stage: int
    base: TrialConfig
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    git_commit: str
    data_checksum: str
    data_dir: str | None
    device: str
    cpus: int
    capture_users: int
    checkpoint_seconds: float = 0.0  # at most this often (and after the last epoch); 0: every


def train_trial(params: dict[str, Any], job: UnitJob) -> None:
    """Tune's trainable: `params` are the searched or grid values, over `job.base`."""
    values = {**job.base.to_dict(), **typed_values(params), "device": job.device}
    # MLflow gets the number of groups used, not 0 for "auto"; a config or data error is
    # left to run_trial below, which fails the attached run with it.
    with contextlib.suppress(ConfigError, DataError, OSError):
        values["length_groups"] = planned_length_groups(from_dict(values), job.data_dir)
    trial_id = tune.get_context().get_trial_id()
    run = TrialRun.attach(
        job.tracking_uri,
        job.experiment_id,
        trial_tags(job, values, trial_id),
        values,
        run_name=trial_run_name(values, {key: values[key] for key in params}, job.stage),
    )
    with Settled([run]) as settled:
        config = from_dict(values)
        reporter = settled.reporter = EpochReporter(run, config, job.checkpoint_seconds)
        torch.set_num_threads(job.cpus)
        result = run_trial(
            config,
            data_dir=job.data_dir,
            callback=reporter,
            checkpoint=load_checkpoint(),
            log=None,
            capture_users=job.capture_users,
        )
        run.log_result(result)
        run.end(FINISHED)
    reporter.finish(result)


class Settled:
    """`with Settled(runs) as settled:` around a trial's training: if it raises, every run of
    `runs` still open ends KILLED (Tune stopped the trial during a report: SystemExit from the
    scheduler, the stopper or Ctrl-C) or FAILED with the error, the unsent checkpoint of
    `settled.reporter` (once set) is dropped, and the error goes on to Tune."""

    def __init__(self, runs: Iterable[TrialRun]) -> None:
        self.runs = runs
        self.reporter: TuneReports | None = None

    def __enter__(self) -> Settled:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _) -> bool:
        if error is None:
            return False
        stopped = isinstance(error, SystemExit)
        reason = None if stopped else f"{type(error).__name__}: {error}"
        for run in self.runs:
            end_quietly(run, KILLED if stopped else FAILED, reason)
        if self.reporter is not None:
            self.reporter.discard()
        return False


def end_quietly(run: TrialRun, status: str, error: str | None = None) -> None:
    """End the run; where the store refuses (a full disk), the trial's own error still goes to
    Tune, and the driver ends the run once it has made room."""
    with contextlib.suppress(Exception):
        run.end(status, error)


def trial_tags(job: UnitJob, values: dict[str, Any], trial_id: str) -> dict[str, str]:
    return trial_run_tags(
        job.sweep, job.stage, values, job.git_commit, job.data_checksum, trial_id, job.parent_run_id
    )


def tune_metrics(record: EpochRecord) -> dict[str, float]:
    """What Tune sees each epoch: validation metrics only (never test)."""
    return {**record.metrics(), "epoch": record.epoch, "best_epoch": record.best_epoch}


def is_last_epoch(record: EpochRecord, config: TrialConfig) -> bool:
    """Whether the trainer stops after this epoch (mirrors Trainer.fit's loop condition)."""
    return record.epoch >= config.max_epochs or record.epoch - record.best_epoch >= config.patience


def load_checkpoint() -> dict[str, Any] | None:
    """The trainer state of this trial's latest Tune checkpoint (a resumed trial), or None."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)


class TuneReports:
    """Reports to Tune with a checkpoint when one is due: `checkpoint_seconds` after the last
    one (0: every report), or when forced. The report after which training ends is held back
    (`pending`) until the test split is scored: Tune ends a trial at the report its stopper
    acts on, which would skip the test."""

    def __init__(
        self, checkpoint_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.checkpoint_seconds = checkpoint_seconds
        self.clock = clock
        self.saved_at = clock()
        self.pending: tuple[dict[str, float], Path | None] | None = None

    def due(self) -> bool:
        return self.clock() - self.saved_at >= self.checkpoint_seconds

    def step(
        self,
        metrics: dict[str, float],
        state: Callable[[], dict[str, Any]],
        last: bool,
        force: bool = False,
    ) -> None:
        """One report; the trainer state is saved now (it changes after the fit) if due."""
        folder = None
        if last or force or self.due():
            folder = Path(tempfile.mkdtemp(prefix="awr-checkpoint-"))
            torch.save(state(), folder / CHECKPOINT_FILE)
            self.saved_at = self.clock()
        if last:
            self.pending = (metrics, folder)
            return
        self._report(metrics, folder)

    def release(self) -> bool:
        """Send the held-back report, if any; whether there was one."""
        if self.pending is None:
            return False
        metrics, folder = self.pending
        self.pending = None
        self._report(metrics, folder)
        return True

    def discard(self) -> None:
        if self.pending is not None and self.pending[1] is not None:
            shutil.rmtree(self.pending[1], ignore_errors=True)
        self.pending = None

    @staticmethod
    def _report(metrics: dict[str, float], folder: Path | None) -> None:
        if folder is None:
            tune.report(metrics)
            return
        try:
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class EpochReporter(TuneReports):
    """Trainer callback: each epoch to MLflow (one batch) and to Tune."""

    def __init__(self, run: TrialRun, config: TrialConfig, checkpoint_seconds: float = 0.0):
        super().__init__(checkpoint_seconds)
        self.run = run
        self.config = config

    def __call__(self, record: EpochRecord, state: Callable[[], dict[str, Any]]) -> None:
        self.run.log_epoch(record)
        self.step(tune_metrics(record), state, last=is_last_epoch(record, self.config))

    def finish(self, result: TrialResult) -> None:
        """The final report; without a pending epoch (resumed after the last one), the last."""
        if self.release():
            return
        if result.history:
            tune.report(tune_metrics(result.history[-1]))
        else:
            tune.report({SEARCH_METRIC: 0.0, "epoch": 0})
