"""The operator's choices for one `--sweep` run (the command line fills them in), how they
change the sweep (`apply_options(sweep, options)`), and the checks a sweep passes before anything
starts, which `--dry-run` prints (`dry_run_text`): where each dataset comes from (a file in the
data dir, a path, or a download on first use; a dataset that cannot be had is an error saying
how to get it), and the resources of a local run (GPUs the machine does not have are an error,
as they are once Ray starts). Nothing here downloads, writes or starts Ray."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from awr.data.datasets import resolve_data_dir, resolve_source
from awr.data.download import NO_DOWNLOAD_ENV, ensure_dataset, env_flag, source_url
from awr.data.sources import SOURCES
from awr.sweep.cluster import Cluster, Placement, local_cpus, trial_resources
from awr.sweep.plan import format_plan
from awr.sweep.spec import Sweep, SweepError

GENERATED = ("synthetic",)  # dataset names that are no file (awr.data.synthetic)


@dataclass(frozen=True)
class SweepOptions:
    """name: a sweep in `sweeps/` or `module:attribute`; out: absolute output folder;
    resume: continue an interrupted sweep in `out`; dry_run: print the plan only;
    address: attach to a Ray cluster instead of starting one; tracking_uri: MLflow store
    (default: sqlite in `out`); gpus_per_trial: overrides the sweep's GPU fraction (0 = CPU);
    data_dir: dataset folder (default: $AWR_DATA_DIR, else ~/.cache/awr/data); seeds: stage-2
    seeds instead of the sweep's (with --resume, adds seeds to a finished sweep: new seeds are
    new units); pack_seeds, checkpoint_seconds: override the sweep's (None: keep them);
    datasets: the datasets the sweep's cells run on instead of its own (names, or paths made
    absolute by `dataset_argument`; see `with_datasets`); command: how the operator runs awr,
    for the resume hints (`awr` or `python orchestrate.py`)."""

    name: str
    out: Path
    resume: bool = False
    dry_run: bool = False
    address: str | None = None
    tracking_uri: str | None = None
    gpus_per_trial: float | None = None
    data_dir: str | None = None
    seeds: tuple[int, ...] | None = None
    pack_seeds: bool | None = None
    checkpoint_seconds: float | None = None
    datasets: tuple[str, ...] | None = None
    command: str = "python orchestrate.py"


def apply_options(sweep: Sweep, options: SweepOptions) -> Sweep:
    """`sweep` with the options that override its definition: seeds, packing, checkpoint
    interval and datasets (each only when given; dataset paths made absolute)."""
    chosen = ("seeds", "pack_seeds", "checkpoint_seconds")
    overrides = {name: getattr(options, name) for name in chosen}
    sweep = dataclasses.replace(sweep, **{k: v for k, v in overrides.items() if v is not None})
    if options.datasets is None:
        return sweep
    return with_datasets(sweep, tuple(map(dataset_argument, options.datasets)))


def with_datasets(sweep: Sweep, datasets: tuple[str, ...]) -> Sweep:
    """The sweep on `datasets` instead of its own: a dataset the sweep already has keeps its
    cells as defined; any other gets a copy of the cells (settings and axes per backbone) of
    the sweep's first dataset. Cells are ordered by `datasets`, then as the sweep has them."""
    if not datasets:
        raise SweepError("--datasets needs at least one dataset (names or paths, by commas)")
    own = sweep.datasets
    cells = []
    for dataset in dict.fromkeys(datasets):
        template = dataset if dataset in own else own[0]
        cells += [
            dataclasses.replace(cell, settings=cell.settings.replace(dataset=dataset))
            for cell in sweep.cells
            if cell.dataset == template
        ]
    return dataclasses.replace(sweep, cells=tuple(cells))


def dataset_argument(text: str) -> str:
    """One `--datasets` entry: a dataset name as it is, else a path, made absolute (trials run
    in their own folders). Whether the file exists is checked before the sweep starts."""
    name = text.strip()
    if not name:
        raise SweepError("--datasets has an empty entry; give names or paths separated by commas")
    if name in SOURCES or name in GENERATED:
        return name
    return str(Path(name).expanduser().resolve())


def dataset_list(text: str) -> tuple[str, ...]:
    """`--datasets ml-1m,./mine.txt` -> ("ml-1m", "/abs/mine.txt"), repeats dropped."""
    return tuple(dict.fromkeys(dataset_argument(part) for part in text.split(",")))


def dataset_line(name: str, data_dir: Path) -> str:
    """Where `name` comes from, as one line; raises DataError (the data layer's message: the
    URL, the file and where to put it) when the run could not get it."""
    if name in GENERATED:
        return f"{name}: generated (awr.data.synthetic)"
    source = SOURCES.get(name)
    if source is None:
        resolve_source(name, data_dir)  # a path: DataError when there is no such file
        return f"{name}: a file"
    local = [rel for rel in (*source.files, source.archive) if rel is not None]
    found = next((data_dir / rel for rel in local if (data_dir / rel).is_file()), None)
    if found is not None:
        return f"{name}: {found}"
    if source.url is None or env_flag(NO_DOWNLOAD_ENV):
        ensure_dataset(name, data_dir, download=False)  # raises the message saying how
    where = "" if data_dir.is_dir() else " (it does not exist yet and is created)"
    return (
        f"{name}: not in the data dir {data_dir}{where}; downloaded from {source_url(source)} "
        "on first use"
    )


def dataset_lines(sweep: Sweep, data_dir: str | None) -> list[str]:
    """`dataset_line` of each of the sweep's datasets (the data dir as the trials get it)."""
    folder = resolve_data_dir(data_dir)
    return [dataset_line(name, folder) for name in sweep.datasets]


def local_gpus() -> int:
    """CUDA devices this process's torch can use (0 on a CPU-only build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def machine() -> str:
    """This machine, as resource errors name it (a CPU-only torch sees no GPU)."""
    import torch

    return "this machine" if torch.version.cuda else "this machine (a CPU-only torch build)"


def local_resources(sweep: Sweep, options: SweepOptions) -> Placement:
    """What each trial of a local run gets on this machine (all its cores, the GPUs torch
    sees); SweepError for GPUs it does not have, as `trial_resources` says once Ray starts."""
    cluster = Cluster(cpus=float(local_cpus()), gpus=float(local_gpus()))
    return trial_resources(sweep.resources, options.gpus_per_trial, cluster, machine())


def dry_run_resources(sweep: Sweep, options: SweepOptions) -> str:
    """Resources as the plan states them: checked against this machine for a local run; a
    cluster's are known only once the driver attaches (then checked the same way)."""
    if options.address is None:
        cpus, gpus = local_cpus(), local_gpus()
        where = f"{machine()}: {cpus} CPUs, {gpus} GPUs"
        return f"{local_resources(sweep, options).describe()} ({where})"
    wanted = sweep.resources
    gpus = wanted.gpus if options.gpus_per_trial is None else options.gpus_per_trial
    return (
        f"{wanted.cpus} CPU per trial, plus {gpus:g} GPU (device cuda) where the cluster at "
        f"{options.address} has GPUs, else CPU only; checked against its resources at start"
    )


def dry_run_text(sweep: Sweep, options: SweepOptions) -> str:
    """The `--dry-run` text: the plan, then one line per dataset (for a local run); raises the
    first resource or dataset fault instead."""
    text = format_plan(sweep, dry_run_resources(sweep, options))
    if options.address is not None:
        return text
    data = dataset_lines(sweep, options.data_dir)
    return "\n".join([text, "data:", *(f"    {line}" for line in data)])
