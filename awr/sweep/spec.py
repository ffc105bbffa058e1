"""What a sweep is, as typed data: cells (dataset x backbone with fixed settings), the stage-1
search, the budget, the stage-2 grid (mechanisms x seeds x extra axes) and the resources.

The sweep modules in `sweeps/` build one `Sweep` each; nothing here runs Ray. The end of the
file reads a define-by-run search space without Optuna: the grid its `suggest_categorical`
calls describe (for GridSampler and trial counts), the fields it searches, the grid's points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig, field_types, field_value
from awr.errors import AwrError

# A define-by-run search space: calls `trial.suggest_*` for each searched field of a backbone.
SpaceFunction = Callable[[Any, str], None]
Sampler = Literal["grid", "tpe"]


class SweepError(AwrError, ValueError):
    """A sweep definition, option or output folder is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class Budget:
    """Epoch budget of every trial: at most `max_epochs`, stop after `patience` epochs without a
    better validation NDCG@5."""

    max_epochs: int
    patience: int


@dataclass(frozen=True)
class Resources:
    """Per trial: `cpus` CPU cores; `gpus` of a GPU (fractions pack several trials on one GPU),
    used only where the cluster has GPUs (the `--gpus-per-trial` option overrides it)."""

    cpus: int = 1
    gpus: float = 0.25


@dataclass(frozen=True)
class Search:
    """Stage 1: Ray Tune with OptunaSearch over `space` (a define-by-run function
    `space(trial, backbone)`), on validation NDCG@5 only.

    sampler "grid": Optuna's GridSampler over every `suggest_categorical` choice, each point once
    (`num_samples` None = the whole grid, fewer = a random subset). sampler "tpe": TPE with
    `num_samples` trials. `asha`: also stop poor trials early at rungs from `asha_grace` epochs.
    """

    space: SpaceFunction
    sampler: Sampler = "grid"
    num_samples: int | None = None
    seed: int = 0
    asha: bool = False
    asha_grace: int = 5


@dataclass(frozen=True)
class Axis:
    """An extra stage-2 grid axis: a TrialConfig field and its values (e.g. num_layers 1..4)."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One dataset x backbone: its fixed settings (a TrialConfig whose dataset and backbone are
    the cell's) and the stage-2 axes that only this cell has."""

    settings: TrialConfig
    axes: tuple[Axis, ...] = ()

    @property
    def dataset(self) -> str:
        return self.settings.dataset

    @property
    def backbone(self) -> str:
        return self.settings.backbone


@dataclass(frozen=True)
class Sweep:
    """A whole sweep. Stage 1 (when `search` is set) tunes each cell's backbone alone; stage 2
    runs, at the tuned (or fixed) settings, every mechanism of `mechanisms` that fits the
    backbone x `seeds` x the axes."""

    name: str
    description: str
    cells: tuple[Cell, ...]
    budget: Budget
    seeds: tuple[int, ...]
    search: Search | None = None
    axes: tuple[Axis, ...] = ()
    mechanisms: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(MECHANISMS_BY_BACKBONE)
    )
    resources: Resources = Resources()
    capture_users: int = 8  # test users whose attention maps go to attention.npz
    # Stage 2: the seeds of each point train as one packed model (one Ray trial, one MLflow
    # run per seed; awr/packed_trial.py). None: where trials run on a GPU, whose kernels a
    # pack fills; not on CPU, where a pack measured no faster than its seeds one by one.
    pack_seeds: bool | None = None
    # A trial saves its Tune checkpoint at most this often, and after its last epoch: a
    # resume repeats at most this much training. 0: after every epoch.
    checkpoint_seconds: float = 60.0

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cell.dataset for cell in self.cells))

    @property
    def backbones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cell.backbone for cell in self.cells))

    def cell(self, dataset: str, backbone: str) -> Cell:
        for cell in self.cells:
            if (cell.dataset, cell.backbone) == (dataset, backbone):
                return cell
        raise SweepError(f"sweep {self.name!r} has no cell {dataset}/{backbone}")


def cells_for(datasets: tuple[str, ...], settings: Mapping[str, TrialConfig]) -> tuple[Cell, ...]:
    """A cell for every dataset x backbone of `settings` (backbone -> its fixed settings),
    datasets varying slowest."""
    return tuple(
        Cell(config.replace(dataset=dataset, backbone=backbone))
        for dataset in datasets
        for backbone, config in settings.items()
    )


def typed_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """TrialConfig field values as their fields' types (`field_value`: Optuna and JSON give 0
    for 0.0)."""
    types = field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise SweepError(f"unknown TrialConfig fields {unknown}; valid: {', '.join(types)}")
    return {name: field_value(name, value) for name, value in values.items()}


def with_budget(config: TrialConfig, budget: Budget) -> TrialConfig:
    return config.replace(max_epochs=budget.max_epochs, patience=budget.patience)


def describe_settings(config: TrialConfig) -> str:
    """The fields of `config` that differ from TrialConfig's defaults, as `key=value`."""
    default = TrialConfig()
    changed = [
        f"{f.name}={getattr(config, f.name)}"
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(default, f.name)
    ]
    return " ".join(changed) or "(defaults)"


class _GridRecorder:
    """Stands in for an Optuna trial to read a define-by-run space's categorical choices."""

    def __init__(self) -> None:
        self.choices: dict[str, list[Any]] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.choices[name] = list(choices)
        return self.choices[name][0]

    def __getattr__(self, name: str) -> Any:
        raise SweepError(
            f"a grid search space may only call suggest_categorical, not {name}; "
            "use sampler='tpe' with num_samples for continuous ranges"
        )


def grid_of(space: SpaceFunction, backbone: str) -> dict[str, list[Any]]:
    """The grid a define-by-run space describes for `backbone`: field -> choices."""
    recorder = _GridRecorder()
    space(recorder, backbone)
    return recorder.choices


class _NameRecorder:
    """Stands in for an Optuna trial to read which fields a space searches (any distribution)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.names.append(name)
        return list(choices)[0]

    def suggest_float(self, name: str, low: float, high: float, **options: Any) -> float:
        self.names.append(name)
        return low

    def suggest_int(self, name: str, low: int, high: int, **options: Any) -> int:
        self.names.append(name)
        return low


def searched_fields(space: SpaceFunction, backbone: str) -> list[str]:
    """The TrialConfig fields a define-by-run space searches for `backbone`."""
    recorder = _NameRecorder()
    space(recorder, backbone)
    return recorder.names


def grid_points(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a grid (the first field varies slowest)."""
    points: list[dict[str, Any]] = [{}]
    for name, choices in grid.items():
        points = [{**point, name: choice} for point in points for choice in choices]
    return points
