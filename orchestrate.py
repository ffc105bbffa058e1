"""awr's command line.

python orchestrate.py --sweep [NAME]           run a sweep (default: quick) with local Ray
python orchestrate.py --trial key=value ...    one local trial, no Ray; prints a JSON line
python orchestrate.py --data-stats NAME        users, items, interactions, lengths
python orchestrate.py --list                   the sweeps and their trial counts
python orchestrate.py --report SWEEP           tables and figures from MLflow
python orchestrate.py --ui                     the MLflow UI for a sweep's store
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrate.py",
        description="Attention weight refinement for sequential recommendation: trials, sweeps, "
        "reports.",
    )
    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument(
        "--sweep",
        nargs="?",
        const="quick",
        metavar="NAME",
        help="run the named sweep (default: quick); see --list",
    )
    job.add_argument(
        "--trial",
        nargs="*",
        metavar="KEY=VALUE",
        help="one local trial without Ray; keys are TrialConfig fields",
    )
    job.add_argument("--data-stats", metavar="NAME", help="dataset statistics (name or path)")
    job.add_argument("--list", action="store_true", help="list the sweeps with trial counts")
    job.add_argument("--report", metavar="SWEEP", help="write the report of a finished sweep")
    job.add_argument("--ui", action="store_true", help="start the MLflow UI on 127.0.0.1")
    parser.add_argument(
        "--data-dir",
        help="dataset folder, where named datasets are downloaded on first use "
        "(default: $AWR_DATA_DIR, else ~/.cache/awr/data)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="never download a missing dataset: fail naming the URL and where to put it "
        "(also AWR_NO_DOWNLOAD=1)",
    )
    parser.add_argument("--json", metavar="PATH", help="--trial: also write the result JSON here")
    parser.add_argument(
        "--out",
        default="runs",
        help="output folder of a sweep, or of --trial's per-user ranks (default: runs/)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="--sweep: continue an interrupted sweep in --out"
    )
    parser.add_argument("--dry-run", action="store_true", help="--sweep: print the plan only")
    parser.add_argument(
        "--address",
        help="--sweep: attach to a Ray cluster (auto or ray://host:port) instead of starting one",
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: sqlite store in --out)"
    )
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        help="--sweep: GPU fraction per trial (default: the sweep's; 0 on machines without GPUs)",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        help="--sweep: stage-2 seeds instead of the sweep's, e.g. 2,3 (with --resume: adds them)",
    )
    parser.add_argument(
        "--pack-seeds",
        action=argparse.BooleanOptionalAction,
        help="--sweep: train each stage-2 point's seeds as one packed model (default: the "
        "sweep's; unset, packed where trials run on GPUs)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        metavar="S",
        help="--sweep: save a trial's checkpoint at most every S seconds and after its last "
        "epoch (default: the sweep's, 60; 0 = every epoch)",
    )
    parser.add_argument("--bench-json", help="--report: benchmark JSON for the complexity table")
    parser.add_argument("--port", type=int, default=5000, help="--ui: port (default 5000)")
    return parser


def run_trial_command(args: argparse.Namespace) -> int:
    from awr.config import from_pairs
    from awr.train.trainer import TrainingDiverged
    from awr.trial import run_trial

    config = from_pairs(args.trial)
    try:
        result = run_trial(config, data_dir=args.data_dir, log=lambda line: print(line, flush=True))
    except TrainingDiverged as error:
        print(
            f"error: the trial diverged: {error} with lr={config.lr:g}; lower the learning "
            f"rate (e.g. lr={config.lr / 10:g})",
            file=sys.stderr,
        )
        return 2
    summary = result.summary()
    if result.ranks is not None:
        summary["ranks_path"] = str(result.ranks.save(trial_ranks_path(args, result.config)))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    return 0


def trial_ranks_path(args: argparse.Namespace, config) -> Path:
    """Where `--trial` keeps its per-user ranks: beside --json (`<name>.ranks.npz`), else under
    --out as `trials/<dataset>-<backbone>-<mechanism>-s<seed>-<time>.ranks.npz`."""
    if args.json:
        json_path = Path(args.json)
        return json_path.with_name(json_path.stem + ".ranks.npz")
    from datetime import datetime

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{Path(config.dataset).name}-{config.backbone}-{config.mechanism}-s{config.seed}"
    return Path(args.out) / "trials" / f"{name}-{stamp}.ranks.npz"


def data_stats_command(args: argparse.Namespace) -> int:
    from awr.config import TrialConfig
    from awr.data.datasets import dataset_stats
    from awr.trial import load_data

    data = load_data(TrialConfig(dataset=args.data_stats), args.data_dir)
    stats = dataset_stats(data)
    width = max(len(key) for key in stats)
    print(f"dataset {data.name}  ({data.source})")
    for key, value in stats.items():
        text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        print(f"  {key:<{width}}  {text}")
    return 0


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds 2,3` -> (2, 3): distinct integers, at least one."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        message = f"expected integers separated by commas, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeated seed in {text!r}")
    return seeds


def sweep_command(args: argparse.Namespace) -> int:
    from awr.sweep import SweepOptions, run_sweep

    options = SweepOptions(
        name=args.sweep,
        out=Path(args.out).resolve(),
        resume=args.resume,
        dry_run=args.dry_run,
        address=args.address,
        tracking_uri=args.tracking_uri,
        gpus_per_trial=args.gpus_per_trial,
        data_dir=args.data_dir,
        seeds=args.seeds,
        pack_seeds=args.pack_seeds,
        checkpoint_seconds=args.checkpoint_seconds,
    )
    return run_sweep(options)


def list_command(args: argparse.Namespace) -> int:
    from sweeps import describe_sweeps

    print(describe_sweeps())
    return 0


def report_command(args: argparse.Namespace) -> int:
    from analysis.report import build_report
    from awr.tracking import default_tracking_uri

    out = Path(args.out).resolve()
    uri = args.tracking_uri or default_tracking_uri(out)
    bench = Path(args.bench_json) if args.bench_json else None
    path = build_report(args.report, uri, Path("reports") / args.report, bench)
    print(f"report written to {path}")
    return 0


def ui_command(args: argparse.Namespace) -> int:
    from awr.tracking import start_ui

    return start_ui(Path(args.out).resolve(), args.tracking_uri, args.port)


def main(argv: list[str] | None = None) -> int:
    from awr.config import ConfigError
    from awr.data.errors import DataError

    args = build_parser().parse_args(argv)
    if args.no_download:  # the environment reaches load_dataset in this process and Ray's
        os.environ["AWR_NO_DOWNLOAD"] = "1"
    commands = [
        (args.trial is not None, run_trial_command),
        (args.data_stats is not None, data_stats_command),
        (args.sweep is not None, sweep_command),
        (args.list, list_command),
        (args.report is not None, report_command),
        (args.ui, ui_command),
    ]
    command = next(function for chosen, function in commands if chosen)
    try:
        return command(args)
    except (ConfigError, DataError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
