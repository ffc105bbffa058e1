"""A sweep as an ordered list of units (one Ray Tune experiment per stage x dataset x backbone)
with their trial counts (stage 1: the grid or num_samples; stage 2: mechanisms x seeds x axes),
the check that every trial would be a valid TrialConfig, and the text `--dry-run` and `--list`
print. With packed seeds, stage 2 runs one Ray trial per mechanism x axes point whose seeds
train as one packed model (the Tune key PACK_KEY holds them); trial counts stay per seed."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from awr.config import MECHANISMS_BY_BACKBONE
from awr.sweep.spec import (
    Cell,
    Search,
    Sweep,
    SweepError,
    describe_settings,
    grid_of,
    grid_points,
    typed_values,
    with_budget,
)

SEEDS_MARK = "/seeds="
PACK_KEY = "seeds"  # the Tune key of a packed stage-2 trial: its seeds, as "1,2,3"


def pack_value(seeds: tuple[int, ...]) -> str:
    return ",".join(map(str, seeds))


def pack_seeds_of(value: str) -> tuple[int, ...]:
    return tuple(int(seed) for seed in str(value).split(","))


def seeds_suffix(seeds: tuple[int, ...]) -> str:
    """What a stage-2 unit's key ends with: `/seeds=1,2,3` (sorted)."""
    return SEEDS_MARK + ",".join(map(str, sorted(seeds)))


@dataclass(frozen=True)
class Unit:
    """One stage of one cell: a Tuner, an MLflow parent run and (stage 1) an Optuna study."""

    sweep: str
    stage: int
    dataset: str
    backbone: str
    trials: int  # MLflow trial runs: one per seed
    seeds: tuple[int, ...] = ()  # stage 2: the seeds it runs (sorted), part of its key and name
    packed: bool = False  # stage 2: the seeds of each point train as one packed model

    @property
    def tune_trials(self) -> int:
        """Ray trials: one per seed, or one per pack of all the seeds."""
        return self.trials // len(self.seeds) if self.packed else self.trials

    @property
    def key(self) -> str:
        """Stage 2's key names its seeds, so a sweep resumed with more seeds (`--seeds`) runs
        the new ones as new units and keeps the finished ones."""
        key = f"{self.stage}/{self.dataset}/{self.backbone}"
        return key + seeds_suffix(self.seeds) if self.seeds else key

    @property
    def label(self) -> str:
        return f"stage {self.stage} {self.dataset} {self.backbone}"

    @property
    def name(self) -> str:
        """Ray experiment folder and Optuna study name: unique per sweep, stage, cell and
        (stage 2) seeds and packing (a resume that changes --pack-seeds starts that unit's
        Ray experiment afresh instead of restoring one of the other shape)."""
        name = f"{self.sweep}-stage{self.stage}-{dataset_slug(self.dataset)}-{self.backbone}"
        if self.seeds:
            name += f"-seeds{'-'.join(map(str, self.seeds))}"
        return name + "-packed" if self.packed else name


def dataset_slug(dataset: str) -> str:
    """A dataset as a folder name: a name as it is; a path (`--datasets`) as its file name's
    stem and 8 hex digits of its sha1, e.g. `/data/mine.txt` -> `mine-1b2c3d4e`."""
    if "/" not in dataset and "\\" not in dataset:
        return dataset
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", dataset.replace("\\", "/").rsplit("/", 1)[-1])
    stem = stem.removesuffix(".gz").rsplit(".", 1)[0] or "dataset"
    return f"{stem}-{hashlib.sha1(dataset.encode()).hexdigest()[:8]}"


def stage1_trials(search: Search, backbone: str) -> int:
    """Trials stage 1 runs for a cell of `backbone`."""
    if search.sampler == "tpe":
        if not search.num_samples:
            raise SweepError("sampler='tpe' needs num_samples")
        return search.num_samples
    size = math.prod(len(choices) for choices in grid_of(search.space, backbone).values())
    if search.num_samples is not None and search.num_samples > size:
        raise SweepError(
            f"num_samples={search.num_samples} exceeds the {backbone} grid of {size} points "
            "(GridSampler would re-run points); leave num_samples unset to cover the grid"
        )
    return search.num_samples or size


def stage2_axes(sweep: Sweep, cell: Cell) -> dict[str, tuple[Any, ...]]:
    """The stage-2 grid of a cell: mechanism, seed, then the sweep's and the cell's axes."""
    axes: dict[str, tuple[Any, ...]] = {
        "mechanism": tuple(sweep.mechanisms[cell.backbone]),
        "seed": tuple(sweep.seeds),
    }
    for axis in (*sweep.axes, *cell.axes):
        axes[axis.name] = tuple(axis.values)
    return axes


def stage2_trials(sweep: Sweep, cell: Cell) -> int:
    return math.prod(len(values) for values in stage2_axes(sweep, cell).values())


def validate(sweep: Sweep) -> None:
    """Check every trial a sweep can make is a valid TrialConfig, before anything runs."""
    if not sweep.cells:
        raise SweepError(f"sweep {sweep.name!r} has no cells")
    if not sweep.seeds:
        raise SweepError(f"sweep {sweep.name!r} has no stage-2 seeds")
    if not sweep.checkpoint_seconds >= 0:
        raise SweepError(
            f"sweep {sweep.name!r}: checkpoint_seconds must be >= 0, got {sweep.checkpoint_seconds}"
        )
    for cell in sweep.cells:
        allowed = MECHANISMS_BY_BACKBONE[cell.backbone]
        chosen = sweep.mechanisms.get(cell.backbone, ())
        if not chosen or any(m not in allowed for m in chosen):
            raise SweepError(
                f"sweep {sweep.name!r}: mechanisms for {cell.backbone} must be a non-empty "
                f"subset of {', '.join(allowed)}; got {chosen}"
            )
        points = grid_points(dict(stage2_axes(sweep, cell)))
        if sweep.search is not None:
            stage1_trials(sweep.search, cell.backbone)
            if sweep.search.sampler == "grid":
                points += grid_points(grid_of(sweep.search.space, cell.backbone))
        base = with_budget(cell.settings, sweep.budget)
        for point in points:
            try:
                base.replace(**typed_values(point))
            except ValueError as error:
                raise SweepError(
                    f"sweep {sweep.name!r}, cell {cell.dataset}/{cell.backbone}, "
                    f"point {point}: {error}"
                ) from None


def packs_seeds(sweep: Sweep, device: str | None) -> bool:
    """Whether stage 2 packs its seeds on `device` (None: not known yet, before Ray starts)."""
    if sweep.pack_seeds is None:
        return device == "cuda"
    return sweep.pack_seeds


def plan_units(sweep: Sweep, device: str | None = None) -> list[Unit]:
    """Stage 1 of every cell (when the sweep searches), then stage 2 of every cell, its
    seeds packed or not as the sweep says for trials on `device`."""
    validate(sweep)
    units = []
    if sweep.search is not None:
        for cell in sweep.cells:
            trials = stage1_trials(sweep.search, cell.backbone)
            units.append(Unit(sweep.name, 1, cell.dataset, cell.backbone, trials))
    for cell in sweep.cells:
        trials = stage2_trials(sweep, cell)
        seeds = tuple(sorted(sweep.seeds))
        packed = packs_seeds(sweep, device) and len(seeds) > 1
        units.append(Unit(sweep.name, 2, cell.dataset, cell.backbone, trials, seeds, packed))
    return units


def stage_totals(units: list[Unit]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for unit in units:
        totals[unit.stage] = totals.get(unit.stage, 0) + unit.trials
    return totals


def summary_line(sweep: Sweep) -> str:
    """One line for `--list`: trials per stage and per cell."""
    units = plan_units(sweep)
    parts = []
    for stage, total in stage_totals(units).items():
        cells = ", ".join(f"{u.dataset}/{u.backbone} {u.trials}" for u in units if u.stage == stage)
        parts.append(f"stage {stage}: {total} trials ({cells})")
    return "; ".join(parts)


def format_plan(sweep: Sweep, resources: str) -> str:
    """The `--dry-run` text: stages, cells, settings, searched fields, trial counts, resources
    (packing as on CPU where the sweep leaves it to the device)."""
    units = plan_units(sweep)
    lines = [f"sweep {sweep.name}: {sweep.description}"]
    budget = sweep.budget
    lines.append(
        f"budget: up to {budget.max_epochs} epochs, patience {budget.patience}; checkpoints "
        f"at most every {sweep.checkpoint_seconds:g} s"
    )
    lines.append(f"resources: {resources}")
    for cell in sweep.cells:
        lines.append(f"cell {cell.dataset}/{cell.backbone}: {describe_settings(cell.settings)}")
    search = sweep.search
    for unit in units:
        lines.append(f"{unit.label}: {unit.trials} trials")
        if unit.stage == 1 and search is not None:
            if search.sampler == "grid":
                grid = grid_of(search.space, unit.backbone)
                fields = ", ".join(f"{name} {choices}" for name, choices in grid.items())
                lines.append(f"    Optuna GridSampler over {fields}")
            else:
                lines.append(f"    Optuna TPE, {search.num_samples} samples")
            if search.asha:
                lines.append(f"    ASHA from {search.asha_grace} epochs")
        if unit.stage == 2:
            axes = stage2_axes(sweep, sweep.cell(unit.dataset, unit.backbone))
            tuned = "stage 1's best settings" if search is not None else "the fixed settings"
            grid = " x ".join(f"{name} {list(values)}" for name, values in axes.items())
            lines.append(f"    at {tuned}: {grid}")
            if unit.packed:
                lines.append(
                    f"    packed seeds: {unit.tune_trials} Ray trials of {len(unit.seeds)} seeds "
                    "each, one MLflow run per seed"
                )
            elif sweep.pack_seeds is None and len(unit.seeds) > 1:
                lines.append("    packed seeds where trials run on GPUs (one Ray trial per point)")
    totals = stage_totals(units)
    counts = ", ".join(f"stage {stage} {total}" for stage, total in totals.items())
    lines.append(f"total: {sum(totals.values())} trials ({counts})")
    return "\n".join(lines)
