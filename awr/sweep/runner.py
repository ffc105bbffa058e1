"""`run_sweep(sweep, options)`: a whole sweep, unit by unit (stage 1 of every cell, then
stage 2), with its state in the output folder so that `--resume` skips what finished and
continues the rest."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from awr.config import TrialConfig
from awr.data.datasets import resolve_cache_dir
from awr.eta import format_duration
from awr.sweep.cluster import prepare_environment, quiet_libraries
from awr.sweep.folder import StorageError, check_cache, claim_folder, fault_of, free_reserve
from awr.sweep.options import SweepOptions, apply_options, dry_run_text, local_resources
from awr.sweep.plan import Unit, plan_units
from awr.sweep.processes import reap_leftovers
from awr.sweep.spec import Sweep, SweepError, with_budget
from awr.sweep.state import SweepState, UnitRecord

if TYPE_CHECKING:
    from awr.sweep.unit import SweepContext

INTERRUPTED = 130


def run_sweep(sweep: Sweep, options: SweepOptions) -> int:
    """Run `sweep` as `options` say (the command line loads it by name: `sweeps.load_sweep`):
    0 done, 1 some unit had no successful trial, 130 interrupted (resumable with --resume). One
    driver at a time per output folder."""
    prepare_environment(local=options.address is None)
    defined_seeds = sweep.seeds
    sweep = apply_options(sweep, options)
    if options.dry_run:
        print(dry_run_text(sweep, options))
        return 0
    if options.address is None:
        local_resources(sweep, options)  # GPUs this machine lacks: an error before Ray starts
    out = options.out.resolve()
    start = f"{options.command} --sweep {options.name} --out {out}{seeds_option(options)}"
    if options.resume and not out.is_dir():  # a mistyped --out: say so, and create nothing
        SweepState.check(out, sweep.name, options.resume, start)
    with claim_folder(out):
        reaped = reap_leftovers(out)
        if reaped:
            print(f"stopped {reaped} Ray processes left by an earlier, killed driver", flush=True)
        return run_in_folder(sweep, options, out, defined_seeds, start)


def run_in_folder(
    sweep: Sweep, options: SweepOptions, out: Path, defined_seeds: tuple[int, ...], start: str
) -> int:
    """The sweep in `out`, whose lock this driver holds (`start` is the command that starts
    it); a storage fault under it ends every open MLflow run FAILED and becomes one
    StorageError line saying how to resume."""
    units = plan_units(sweep)
    # Ray, Optuna and MLflow are imported only now, after the environment is set.
    from awr.store import check_tracking_uri, client_for, default_tracking_uri
    from awr.sweep.cluster import ray_session, trial_resources
    from awr.sweep.unit import SweepContext
    from awr.tracking import git_commit

    quiet_libraries()
    uri = options.tracking_uri or default_tracking_uri(out)
    check_tracking_uri(uri)
    SweepState.check(out, sweep.name, options.resume, start)
    earlier = SweepState.load(out, sweep.name, defined_seeds)
    for unit in units:
        if unit.stage == 2:
            earlier.check_new_seeds(unit)
    data_dir = trial_data_dir(options)
    checksums = data_checksums(sweep, data_dir) if options.address is None else {}
    if options.address is None and (warning := check_cache(resolve_cache_dir(None))):
        print(warning, file=sys.stderr, flush=True)
    try:
        with ray_session(out, options.address) as cluster:
            resources = trial_resources(sweep.resources, options.gpus_per_trial, cluster)
            units = plan_units(sweep, resources.device)  # seeds packed or not on this device
            client = client_for(uri)
            experiment_id = ensure_fresh_experiment(client, sweep.name, uri, options.resume)
            state = SweepState.open(out, sweep.name, defined_seeds)
            context = SweepContext(
                sweep=sweep,
                out=out,
                resume=options.resume,
                tracking_uri=uri,
                experiment_id=experiment_id,
                git_commit=git_commit(),
                checksums=checksums,
                data_dir=data_dir,
                resources=resources,
            )
            total = sum(unit.trials for unit in units)
            print(
                f"sweep {sweep.name}: {total} trials in {len(units)} units; "
                f"{resources.describe()}; MLflow {uri}",
                flush=True,
            )
            if not run_units(context, units, state):
                print(f"interrupted; continue with: {start} --resume", flush=True)
                return INTERRUPTED
    except Exception as error:
        fault = fault_of(error, out, store=uri)
        if fault is None or (isinstance(error, SweepError) and not isinstance(error, StorageError)):
            raise
        raise StorageError(storage_message(fault, out, uri, sweep.name, start)) from None
    return final_summary(state, units, uri)


def seeds_option(options: SweepOptions) -> str:
    """The options a resume must repeat: --seeds, --datasets and the packing choice, when
    given."""
    text = "" if options.seeds is None else " --seeds " + ",".join(map(str, options.seeds))
    if options.datasets is not None:
        text += " --datasets " + ",".join(options.datasets)
    if options.pack_seeds is not None:
        text += " --pack-seeds" if options.pack_seeds else " --no-pack-seeds"
    return text


def storage_message(fault: str, out: Path, uri: str, sweep: str, start: str) -> str:
    """After a storage fault (Ray already stopped): free the reserve, end the open MLflow runs
    FAILED with the fault, and say in one line what failed, where, and how to resume."""
    free_reserve(out)
    try:
        ended = fail_open_runs(uri, sweep, f"storage fault: {fault}")
        runs = f"{ended} open MLflow run{'' if ended == 1 else 's'} ended FAILED"
    except Exception:  # the store itself cannot be written: --resume settles the runs later
        runs = "the open MLflow runs could not be ended (--resume settles them)"
    return f"the sweep stopped: {fault}; {runs}; once fixed, continue with: {start} --resume"


def fail_open_runs(uri: str, sweep: str, reason: str) -> int:
    """End every RUNNING run of the sweep's experiment FAILED with `reason`; how many."""
    from awr.schema import FAILED
    from awr.store import client_for, search_all
    from awr.tracking import end_run

    client = client_for(uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        return 0
    runs = search_all(client, experiment.experiment_id, "attributes.status = 'RUNNING'")
    for run in runs:
        end_run(client, run.info.run_id, FAILED, reason)
    return len(runs)


def run_units(context: SweepContext, units: list[Unit], state: SweepState) -> bool:
    """Each unit in order, skipping those finished earlier; False when interrupted."""
    from awr.sweep.progress import plan_sweep
    from awr.sweep.unit import run_unit

    left = [unit for unit in units if state.done(unit) is None]
    plan_sweep(left, context.sweep.budget.max_epochs, context.resources.concurrent)
    for unit in units:
        earlier = state.done(unit)
        if earlier is not None:
            print(f"[{unit.label}] finished earlier: {describe(earlier)}", flush=True)
            continue
        started = time.monotonic()
        base = unit_base(context.sweep, unit, state)
        if base is None:
            print(f"[{unit.label}] skipped: stage 1 found no usable trial", flush=True)
            continue
        outcome = run_unit(context, unit, base)
        if outcome.record is None:
            return False
        state.record(unit, outcome.record)
        took = format_duration(time.monotonic() - started)
        print(f"[{unit.label}] finished in {took}: {describe(outcome.record)}", flush=True)
    return True


def trial_data_dir(options: SweepOptions) -> str | None:
    """The dataset folder as an absolute path (trials run in their own folders); on a cluster
    without --data-dir, each node's own AWR_DATA_DIR."""
    from awr.data.datasets import resolve_data_dir

    if options.data_dir is None and options.address is not None:
        return None
    return str(resolve_data_dir(options.data_dir).resolve())


def unit_base(sweep: Sweep, unit: Unit, state: SweepState) -> TrialConfig | None:
    """The settings a unit's trials start from: the cell's fixed settings (stage 1, or a sweep
    without search), else stage 1's best trial of the same cell."""
    cell = sweep.cell(unit.dataset, unit.backbone)
    fixed = with_budget(cell.settings, sweep.budget)
    if unit.stage == 1:
        return fixed.replace(mechanism="none")
    if sweep.search is None:
        return fixed
    first = state.units.get(f"1/{unit.dataset}/{unit.backbone}")
    return first.best() if first is not None else None


def data_checksums(sweep: Sweep, data_dir: str | None) -> dict[str, str]:
    """Load each dataset once before Ray starts: a missing file fails now, with its message."""
    from awr.trial import load_data

    return {
        name: load_data(TrialConfig(dataset=name), data_dir).checksum for name in sweep.datasets
    }


def ensure_fresh_experiment(client: object, sweep: str, uri: str, resume: bool) -> str:
    """The sweep's experiment; a new (not resumed) sweep refuses one that already has trials."""
    from awr.store import ensure_experiment, trial_runs

    experiment_id = ensure_experiment(client, sweep, uri)
    if not resume and trial_runs(client, experiment_id):
        raise SweepError(
            f"the MLflow store {uri} already has trial runs of sweep {sweep!r}; continue them "
            "with --resume, or use another --out / --tracking-uri"
        )
    return experiment_id


def describe(record: UnitRecord) -> str:
    text = f"{record.finished}/{record.trials} trials finished, {record.failed} failed"
    if record.best_value is not None:
        text += f"; best valid ndcg_5 {record.best_value:.4f} (trial {record.best_trial_id})"
    return text


def final_summary(state: SweepState, units: list[Unit], uri: str) -> int:
    """Print the finished sweep's counts (and units without results); the exit code."""
    finished = sum(r.finished for r in state.units.values())
    failed = sum(r.failed for r in state.units.values())
    missing = [u.label for u in units if u.key not in state.units]
    print(
        f"sweep {state.sweep} done: {finished} trials finished, {failed} failed; "
        f"results in MLflow {uri}",
        flush=True,
    )
    if missing:
        print(f"units without results: {', '.join(missing)}", flush=True)
    empty = [key for key, r in state.units.items() if r.finished == 0]
    return 1 if missing or empty else 0
