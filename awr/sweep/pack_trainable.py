"""The function Ray Tune runs for a stage-2 point: `train_point` hands a packed point (its
seeds under PACK_KEY) to `train_pack` and any other to `train_trial`.

A pack is one Ray trial whose seeds train as one packed model (`run_packed_trials`); each
member keeps its own MLflow run, opened (or reattached) by Ray trial id and seed, with the tags,
params, per-epoch metrics, final metrics and artifacts a lone trial has (plus the tag
`pack_seeds`). A member's run ends as soon as the member leaves the pack: FINISHED with its
test scored, or FAILED with its own error while the others go on. Tune sees one report per
pack epoch, checkpoints by time (and whenever a member ended), and the pack's last report after
every member's test."""

from __future__ import annotations

from statistics import fmean
from typing import Any

import torch
from ray import tune

from awr.config import from_dict
from awr.packed_trial import MemberFailure, Outcome, run_packed_trials
from awr.schema import FAILED, FINISHED, PACK_SEEDS
from awr.sweep.naming import trial_run_name
from awr.sweep.plan import PACK_KEY, pack_seeds_of, pack_value
from awr.sweep.spec import typed_values
from awr.sweep.trainable import (
    SEARCH_METRIC,
    Settled,
    TuneReports,
    UnitJob,
    load_checkpoint,
    train_trial,
    trial_tags,
)
from awr.tracking import TrialRun
from awr.train.packed import PackEpoch
from awr.train.trainer import EpochRecord
from awr.trial import planned_length_groups


def train_point(params: dict[str, Any], job: UnitJob) -> None:
    """Tune's trainable for every unit: packs where the point has PACK_KEY."""
    if PACK_KEY in params:
        train_pack(params, job)
    else:
        train_trial(params, job)


def train_pack(params: dict[str, Any], job: UnitJob) -> None:
    """One pack: `params[PACK_KEY]` its seeds, the rest the point's values over `job.base`."""
    point = {k: v for k, v in params.items() if k != PACK_KEY}
    seeds = pack_seeds_of(params[PACK_KEY])
    values = {**job.base.to_dict(), **typed_values(point), "device": job.device}
    values["length_groups"] = planned_length_groups(from_dict(values), job.data_dir)
    trial_id = tune.get_context().get_trial_id()
    checkpoint = load_checkpoint()
    done = set(checkpoint["outcomes"]) if checkpoint is not None else set()
    runs = {}
    for member, seed in enumerate(seeds):
        if member in done:  # ended before the checkpoint: its run is settled
            continue
        member_values = {**values, "seed": seed}
        tags = {**trial_tags(job, member_values, trial_id), PACK_SEEDS: pack_value(seeds)}
        name = trial_run_name(member_values, {key: values[key] for key in point}, job.stage)
        runs[member] = TrialRun.attach(
            job.tracking_uri, job.experiment_id, tags, member_values, name
        )
    with Settled(runs.values()) as settled:
        configs = [from_dict({**values, "seed": seed}) for seed in seeds]
        earlier = checkpoint["outcomes"] if checkpoint is not None else {}
        reporter = settled.reporter = PackReporter(runs, job.checkpoint_seconds, earlier)
        torch.set_num_threads(job.cpus)
        outcomes = run_packed_trials(
            configs,
            data_dir=job.data_dir,
            callback=reporter,
            checkpoint=checkpoint,
            log=None,
            capture_users=job.capture_users,
        )
    reporter.finish(outcomes)


class PackReporter(TuneReports):
    """A pack's callback: each member's epochs and end to its MLflow run, each pack epoch to
    Tune. Tune's view of the pack: `epoch`, `best_epoch` (the latest best epoch among the
    members still training, so the patience stopper never ends a pack that has a member
    within its patience), SEARCH_METRIC (the members' mean running best) and the counts
    `members_active`, `members_finished`, `members_failed`."""

    def __init__(
        self, runs: dict[int, TrialRun], checkpoint_seconds: float, earlier: dict[int, Outcome]
    ) -> None:
        super().__init__(checkpoint_seconds)
        self.runs = runs
        self.best: dict[int, float] = {}  # member -> running best validation NDCG@5
        self.finished = self.failed = 0
        for member, outcome in earlier.items():  # members that ended before a resume
            self.count(member, outcome)

    def count(self, member: int, outcome: Outcome) -> None:
        if isinstance(outcome, MemberFailure):
            self.failed += 1
            if outcome.history:
                self.best[member] = outcome.history[-1].best_valid_ndcg_5
        else:
            self.finished += 1
            self.best[member] = outcome.valid.get("ndcg_5", 0.0)

    def member_epoch(self, member: int, record: EpochRecord) -> None:
        self.runs[member].log_epoch(record)
        self.best[member] = record.best_valid_ndcg_5

    def member_end(self, member: int, outcome: Outcome) -> None:
        run = self.runs.pop(member)
        self.count(member, outcome)
        if isinstance(outcome, MemberFailure):
            run.end(FAILED, outcome.error)
        else:
            run.log_result(outcome)
            run.end(FINISHED)

    def pack_epoch(self, epoch: PackEpoch, state: Any) -> None:
        training = [r.best_epoch for m, r in epoch.records.items() if m not in epoch.ended]
        metrics = {
            SEARCH_METRIC: fmean(self.best.values()) if self.best else 0.0,
            "epoch": epoch.epoch,
            "best_epoch": max(training, default=epoch.epoch),
            "members_active": epoch.active,
            "members_finished": self.finished,
            "members_failed": self.failed,
        }
        self.step(metrics, state, last=epoch.active == 0, force=bool(epoch.ended))

    def finish(self, outcomes: list[Outcome]) -> None:
        """The pack's last report; resumed after its last epoch, one from the outcomes."""
        if self.release():
            return
        epochs = max((len(o.history) for o in outcomes), default=0)
        tune.report(
            {
                SEARCH_METRIC: fmean(self.best.values()) if self.best else 0.0,
                "epoch": epochs,
                "best_epoch": epochs,
                "members_active": 0,
                "members_finished": self.finished,
                "members_failed": self.failed,
            }
        )
