"""The small JSON in the sweep folder that says which units finished and what stage 1 chose, so
a resumed sweep skips finished units and stage 2 starts from stage 1's best settings."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awr.config import TrialConfig, from_dict
from awr.files import atomic_write, write_text_atomic
from awr.sweep.plan import SEEDS_MARK, Unit, seeds_suffix
from awr.sweep.spec import SweepError


@dataclass
class UnitRecord:
    """A finished unit: its trial counts, MLflow parent run and (stage 1) the best trial."""

    trials: int
    finished: int
    failed: int
    parent_run_id: str
    best_config: dict[str, Any] | None = None  # every TrialConfig field of the best trial
    best_value: float | None = None  # its best validation NDCG@5
    best_trial_id: str | None = None

    def best(self) -> TrialConfig | None:
        return from_dict(self.best_config) if self.best_config is not None else None


@dataclass
class SweepState:
    path: Path
    sweep: str
    units: dict[str, UnitRecord] = field(default_factory=dict)

    @staticmethod
    def file(out: Path, sweep: str) -> Path:
        return out / f"{sweep}.sweep.json"

    @staticmethod
    def backup(path: Path) -> Path:
        """The last good state before the latest save: `<sweep>.sweep.json.bak` beside it."""
        return path.with_name(path.name + ".bak")

    @classmethod
    def check(cls, out: Path, sweep: str, resume: bool, start: str) -> None:
        """Starting afresh where the sweep has already begun is an error (use --resume, or
        another --out); so is resuming where it never began (`start` is the command that
        starts it)."""
        path = cls.file(out, sweep)
        if path.exists() and not resume:
            raise SweepError(
                f"{out} already holds sweep {sweep!r} (see {path.name}); continue it with "
                "--resume, or choose another --out"
            )
        if resume and not path.exists():
            others = sorted(p.name.removesuffix(".sweep.json") for p in out.glob("*.sweep.json"))
            held = f"; it holds sweep {', '.join(map(repr, others))}" if others else ""
            raise SweepError(
                f"--resume: {out} holds no sweep {sweep!r} (no {path.name}){held}; check --out "
                f"and --sweep, or start the sweep without --resume: {start}"
            )

    @classmethod
    def load(cls, out: Path, sweep: str, defined_seeds: tuple[int, ...]) -> SweepState:
        """The state of `sweep` in `out` (empty when there is none yet); writes nothing.
        Stage-2 keys written before keys named their seeds (`2/<dataset>/<backbone>`) ran the
        sweep's own `defined_seeds` and get those in their key. A file that cannot be read as
        a state is an error naming it and its backup."""
        path = cls.file(out, sweep)
        if not path.exists():
            return cls(path, sweep)
        suffix = seeds_suffix(defined_seeds)
        try:
            data = json.loads(path.read_text())
            units = {
                key + suffix if key.startswith("2/") and key.count("/") == 2 else key: UnitRecord(
                    **record
                )
                for key, record in data["units"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SweepError(corrupt_message(path, cls.backup(path), error)) from None
        return cls(path, sweep, units)

    @classmethod
    def open(cls, out: Path, sweep: str, defined_seeds: tuple[int, ...]) -> SweepState:
        """`load`, with the file written at once when new."""
        state = cls.load(out, sweep, defined_seeds)
        if not state.path.exists():
            state.save()
        return state

    def check_new_seeds(self, unit: Unit) -> None:
        """A stage-2 unit not finished yet may not repeat a seed that a finished unit of the
        same cell ran (`--seeds 1,2` after seed 1 would log seed 1 twice)."""
        cell = unit.key.rsplit(SEEDS_MARK, 1)[0]
        done: set[int] = set()
        for key in self.units:
            if key.startswith(cell + SEEDS_MARK):
                done.update(int(seed) for seed in key.rsplit(SEEDS_MARK, 1)[1].split(","))
        repeated = sorted(done.intersection(unit.seeds))
        if repeated and unit.key not in self.units:
            raise SweepError(
                f"{unit.label}: seeds {repeated} already finished in {self.path.name}; "
                f"pass only new seeds with --seeds"
            )

    def done(self, unit: Unit) -> UnitRecord | None:
        return self.units.get(unit.key)

    def record(self, unit: Unit, record: UnitRecord) -> None:
        self.units[unit.key] = record
        self.save()

    def save(self) -> None:
        """Write the state atomically (awr/files.py, synced), keeping the file it replaces as
        the backup; on a full disk the last good state and its backup stay as they were."""
        data = {
            "sweep": self.sweep,
            "units": {key: dataclasses.asdict(record) for key, record in self.units.items()},
        }
        with atomic_write(self.path, sync=True) as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
            handle.flush()  # a full disk fails here, before the backup is touched
            if self.path.exists():
                write_text_atomic(self.backup(self.path), self.path.read_text())


def corrupt_message(path: Path, backup: Path, error: Exception) -> str:
    """One line: which state file is unreadable, why, and how to go on."""
    reason = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
    how = (
        f"restore the last good state with `cp {backup} {path}` and resume again"
        if backup.is_file()
        else "there is no backup of it"
    )
    return (
        f"the sweep state {path} is corrupt ({reason}); {how}, or start afresh in another --out "
        "(the runs already in MLflow stay there)"
    )
