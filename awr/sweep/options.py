"""The operator's choices for one `--sweep` run (the command line fills them in), and how they
change the sweep: `apply_options(sweep, options)`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from awr.data.sources import SOURCES
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
    absolute by `dataset_argument`; see `with_datasets`)."""

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
