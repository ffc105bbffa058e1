"""Reading a define-by-run search space without Optuna: the grid its `suggest_categorical` calls
describe (for GridSampler and trial counts), the fields it searches, the grid's points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awr.sweep.spec import SpaceFunction, SweepError


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
