"""What each command does, given the parsed Namespace (awr.cli.parser): trial, data-stats, sweep,
list, report, ui. Each returns the exit code; a fault the user can fix raises one of the
project's errors, which `awr.cli.main` prints as one line."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path

from awr.cli.store import CommandError, existing_store, tracking_uri_for
from awr.files import write_text_atomic


def trial_command(args: argparse.Namespace) -> int:
    from awr.config import check_device, from_pairs
    from awr.train.trainer import TrainingDiverged
    from awr.trial import run_trial

    config = from_pairs(args.target)
    check_device(config.device)
    try:
        result = run_trial(config, data_dir=args.data_dir, log=lambda line: print(line, flush=True))
    except TrainingDiverged as error:
        raise CommandError(
            f"the trial diverged: {error} with lr={config.lr:g}; lower the learning "
            f"rate (e.g. lr={config.lr / 10:g})"
        ) from None
    summary = result.summary()
    if result.ranks is not None:
        summary["ranks_path"] = str(result.ranks.save(trial_ranks_path(args, result.config)))
    if args.json:
        write_json(Path(args.json), summary)
    print(json.dumps(summary), flush=True)
    return 0


def write_json(path: Path, summary: dict) -> None:
    """The result JSON, written whole or not at all."""
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")


def trial_ranks_path(args: argparse.Namespace, config) -> Path:
    """Where a trial keeps its per-user ranks: beside --json (`<name>.ranks.npz`), else under
    --out as `trials/<dataset>-<backbone>-<mechanism>-s<seed>-<time>.ranks.npz`."""
    if args.json:
        json_path = Path(args.json)
        return json_path.with_name(json_path.stem + ".ranks.npz")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{Path(config.dataset).name}-{config.backbone}-{config.mechanism}-s{config.seed}"
    return Path(args.out) / "trials" / f"{name}-{stamp}.ranks.npz"


def data_stats_command(args: argparse.Namespace) -> int:
    from awr.config import TrialConfig
    from awr.data.datasets import dataset_stats
    from awr.trial import load_data

    data = load_data(TrialConfig(dataset=args.target), args.data_dir)
    stats = dataset_stats(data)
    width = max(len(key) for key in stats)
    print(f"dataset {data.name}  ({data.source})")
    for key, value in stats.items():
        text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        print(f"  {key:<{width}}  {text}")
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    from awr.sweep import SweepOptions, run_sweep
    from awr.sweep.options import dataset_list
    from sweeps import load_sweep

    options = SweepOptions(
        name=args.target,
        out=Path(args.out).resolve(),
        resume=args.resume,
        dry_run=args.dry_run,
        address=args.address,
        tracking_uri=tracking_uri_for(args.tracking_uri),
        gpus_per_trial=args.gpus_per_trial,
        data_dir=args.data_dir,
        seeds=args.seeds,
        pack_seeds=args.pack_seeds,
        checkpoint_seconds=args.checkpoint_seconds,
        datasets=None if args.datasets is None else dataset_list(args.datasets),
        command=args.program,
    )
    return run_sweep(load_sweep(options.name), options)


def list_command(args: argparse.Namespace) -> int:
    from sweeps import describe_sweeps

    print(describe_sweeps())
    return 0


def report_folder(out: Path, sweep: str) -> Path:
    """Where `--report SWEEP` writes: `<out>/reports/<sweep>/` (the sweep's own folder)."""
    return out / "reports" / sweep


def report_command(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    uri = existing_store(args.tracking_uri, out)
    bench = Path(args.bench_json) if args.bench_json else None
    if bench is not None and not bench.is_file():
        raise CommandError(f"--bench-json {bench}: no such file")
    from analysis.report import build_report  # slow to import: after the checks

    # one progress bar per downloaded artifact (ranks, attention of every run) is noise here
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    path = build_report(args.target, uri, report_folder(out, args.target), bench)
    print(f"report written to {path}")
    return 0


def ui_command(args: argparse.Namespace) -> int:
    from awr.cli.ui import start_ui

    out = Path(args.out).resolve()
    return start_ui(existing_store(args.tracking_uri, out), args.port)


COMMAND_FUNCTIONS = {
    "trial": trial_command,
    "data-stats": data_stats_command,
    "sweep": sweep_command,
    "list": list_command,
    "report": report_command,
    "ui": ui_command,
}
