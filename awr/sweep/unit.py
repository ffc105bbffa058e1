"""One unit of a sweep (a stage of one dataset x backbone) as one Ray Tune experiment: start it
or restore it, run it, settle its MLflow runs, and say what came out."""

from __future__ import annotations

import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import ResultGrid

from awr.config import TrialConfig
from awr.schema import BEST_RAY_TRIAL_ID, FAILED, FINISHED, KILLED, SELECTION_KEY
from awr.store import client_for, sqlite_uri
from awr.sweep.cluster import Placement
from awr.sweep.folder import StorageFault, fault_of, storage_fault
from awr.sweep.pack_trainable import train_point
from awr.sweep.plan import PACK_KEY, Unit, pack_value, stage2_axes
from awr.sweep.progress import ProgressLines, completed, planned, watch
from awr.sweep.search import MODE, PatienceStopper, build_scheduler, build_searcher
from awr.sweep.spec import Sweep, searched_fields, typed_values
from awr.sweep.state import UnitRecord
from awr.sweep.trainable import SEARCH_METRIC, UnitJob
from awr.tracking import (
    end_run,
    log_metrics,
    open_parent,
    parent_tags,
    set_tags,
    settle_children,
)


@dataclass(frozen=True)
class SweepContext:
    """What every unit of one sweep run shares."""

    sweep: Sweep
    out: Path
    resume: bool
    tracking_uri: str
    experiment_id: str
    git_commit: str
    checksums: dict[str, str]
    data_dir: str | None
    resources: Placement

    @property
    def ray_storage(self) -> Path:
        return self.out / "ray"

    @property
    def optuna_url(self) -> str:
        return sqlite_uri((self.out / "optuna.db").resolve())


@dataclass(frozen=True)
class UnitOutcome:
    record: UnitRecord | None  # None: interrupted, resumable
    interrupted: bool


def trial_dirname(trial: Any) -> str:
    """Short trial folders (Ray's default names repeat the config)."""
    return trial.trial_id


def run_unit(context: SweepContext, unit: Unit, base: TrialConfig) -> UnitOutcome:
    """Run (or continue) `unit` with every trial built on `base`."""
    client = client_for(context.tracking_uri)
    tags = parent_tags(context.sweep.name, unit.stage, unit.dataset, unit.backbone)
    parent = open_parent(client, context.experiment_id, tags, parent_params(context, unit, base))
    job = UnitJob(
        sweep=context.sweep.name,
        stage=unit.stage,
        base=base,
        tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id,
        parent_run_id=parent,
        git_commit=context.git_commit,
        data_checksum=context.checksums.get(unit.dataset, ""),
        data_dir=context.data_dir,
        device=context.resources.device,
        cpus=context.resources.cpus,
        capture_users=context.sweep.capture_users,
        checkpoint_seconds=context.sweep.checkpoint_seconds,
    )
    trainable = tune.with_resources(
        tune.with_parameters(train_point, job=job), context.resources.as_ray()
    )
    try:
        return run_tuner(context, unit, parent, trainable, base)
    except BaseException as error:  # Ctrl-C outside Tune's handling, an error in Tune itself
        if fault_of(error, context.out, context.tracking_uri) is None:  # else the runner fails it
            end_run(client, parent, KILLED)
        raise


def parent_params(context: SweepContext, unit: Unit, base: TrialConfig) -> dict[str, Any]:
    """Stage 1: the fixed settings and what is searched; stage 2: the settings every trial
    starts from (stage 1's best, or the sweep's fixed settings)."""
    params = base.to_dict()
    search = context.sweep.search
    if unit.stage == 1 and search is not None:
        searched = searched_fields(search.space, unit.backbone)
        params = {k: v for k, v in params.items() if k not in searched}
        params.update(searched=",".join(searched), sampler=search.sampler, trials=unit.trials)
    return params


def run_tuner(
    context: SweepContext, unit: Unit, parent: str, trainable: Any, base: TrialConfig
) -> UnitOutcome:
    """Start or restore the unit's Tuner, run it, settle its runs and sum up."""
    client = client_for(context.tracking_uri)
    path = context.ray_storage / unit.name
    restoring = context.resume and tune.Tuner.can_restore(path)
    if restoring:
        tuner = tune.Tuner.restore(
            str(path), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        shutil.rmtree(path, ignore_errors=True)  # a start killed before Tune's first snapshot
        tuner = new_tuner(context, unit, trainable)
    verb = "resuming" if restoring else "starting"
    packs = f" in {unit.tune_trials} packs of {len(unit.seeds)} seeds" if unit.packed else ""
    print(f"[{unit.label}] {verb}: {unit.trials} trials{packs}", flush=True)
    watch(planned(unit), base.max_epochs, context.resources.concurrent)
    grid = fit(tuner)
    errors = {trial_id(result): str(result.error) for result in grid if result.error}
    settle_children(client, context.experiment_id, parent, errors)
    faults = [f for f in (storage_fault(e, context.tracking_uri) for e in errors.values()) if f]
    if faults:  # not the trials' own failure: the unit stays unfinished, --resume reruns them
        raise StorageFault(faults[0])
    if not completed(unit.label, unit.tune_trials):
        end_run(client, parent, KILLED)
        return UnitOutcome(None, interrupted=True)
    record = unit_record(unit, grid, errors, parent)
    if unit.stage == 1:
        choose_best(grid, base, record)
        if record.best_value is not None:
            log_metrics(client, parent, {SELECTION_KEY: record.best_value})
            set_tags(client, parent, {BEST_RAY_TRIAL_ID: record.best_trial_id or ""})
    if record.finished == 0:
        end_run(client, parent, FAILED, f"all {record.trials} trials failed")
    else:
        end_run(client, parent, FINISHED)
    return UnitOutcome(record, interrupted=False)


def unit_record(unit: Unit, grid: ResultGrid, errors: dict[str, str], parent: str) -> UnitRecord:
    """Counts per MLflow trial run: a pack's members from its last report (in a pack that
    raised, every member not finished by then failed)."""
    if not unit.packed:
        failed = len(errors)
        return UnitRecord(len(grid), len(grid) - failed, failed, parent_run_id=parent)
    finished = failed = 0
    for result in grid:
        done = int((result.metrics or {}).get("members_finished", 0))
        finished += done
        if result.error:
            failed += len(unit.seeds) - done
        else:
            failed += int((result.metrics or {}).get("members_failed", 0))
    return UnitRecord(unit.trials, finished, failed, parent_run_id=parent)


def new_tuner(context: SweepContext, unit: Unit, trainable: Any) -> tune.Tuner:
    sweep = context.sweep
    run_config = tune.RunConfig(
        name=unit.name,
        storage_path=str(context.ray_storage),
        verbose=0,
        stop=PatienceStopper(sweep.budget.patience),
        failure_config=tune.FailureConfig(max_failures=0),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[ProgressLines(unit.label, unit.tune_trials)],
    )
    common = dict(
        max_concurrent_trials=context.resources.concurrent,
        trial_dirname_creator=trial_dirname,
        reuse_actors=True,  # a new trial skips the worker's start and imports (seconds each)
    )
    if unit.stage == 1:
        assert sweep.search is not None
        searcher = build_searcher(
            sweep.search, unit.backbone, context.optuna_url, unit.name, fresh=True
        )
        tune_config = tune.TuneConfig(
            search_alg=searcher,
            scheduler=build_scheduler(sweep.search, sweep.budget),
            num_samples=unit.trials,
            **common,
        )
        return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)
    axes = stage2_axes(sweep, sweep.cell(unit.dataset, unit.backbone))
    space: dict[str, Any] = {name: tune.grid_search(list(values)) for name, values in axes.items()}
    if unit.packed:  # one trial per point for all the seeds
        del space["seed"]
        space[PACK_KEY] = pack_value(unit.seeds)
    tune_config = tune.TuneConfig(num_samples=1, **common)
    return tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)


def fit(tuner: tune.Tuner) -> ResultGrid:
    """tuner.fit(), giving back the SIGINT handler Tune installs for the run."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        return tuner.fit()
    finally:
        if main:
            signal.signal(signal.SIGINT, handler)


def trial_id(result: Any) -> str:
    return Path(result.path).name  # trial folders are named by trial id (trial_dirname)


def choose_best(grid: ResultGrid, base: TrialConfig, record: UnitRecord) -> None:
    """Stage 1's best trial by its running-best validation NDCG@5 (never a test metric)."""
    try:
        best = grid.get_best_result(SEARCH_METRIC, MODE, scope="last", filter_nan_and_inf=True)
    except RuntimeError:
        return
    if SEARCH_METRIC not in best.metrics:
        return
    record.best_config = base.replace(**typed_values(best.config)).to_dict()
    record.best_value = float(best.metrics[SEARCH_METRIC])
    record.best_trial_id = trial_id(best)
