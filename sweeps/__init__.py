"""The sweeps, one module each (quick, paper, layers, fixed, ...), each with a `sweep()` that
returns an `awr.sweep.Sweep`; a new module here is a new sweep name. `load_sweep` also takes
`module:attribute` for sweeps defined elsewhere (tests use `tests.sweep_fixtures:tiny`)."""

from __future__ import annotations

import importlib
import pkgutil

from awr.sweep.plan import summary_line
from awr.sweep.spec import Sweep, SweepError

MAIN = ("quick", "paper", "layers", "fixed")  # listed first, in this order


def sweep_names() -> list[str]:
    """Every sweep module in this package: the main ones first, then the rest by name."""
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return [name for name in MAIN if name in found] + sorted(found - set(MAIN))


def load_sweep(name: str) -> Sweep:
    """The sweep called `name` (see `sweep_names`), or `module:attribute` naming a Sweep or a
    function returning one."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise SweepError(f"cannot load sweep {name!r}: {error}") from None
    elif name in sweep_names():
        found = importlib.import_module(f"sweeps.{name}").sweep
    else:
        raise SweepError(
            f"unknown sweep {name!r}; valid: {', '.join(sweep_names())} (or module:attribute)"
        )
    sweep = found() if callable(found) else found
    if not isinstance(sweep, Sweep):
        raise SweepError(f"{name!r} is not a Sweep (got {type(sweep).__name__})")
    return sweep


def describe_sweeps() -> str:
    """One paragraph per sweep for `--list`: its description and trials per stage and cell."""
    blocks = []
    for name in sweep_names():
        sweep = load_sweep(name)
        blocks.append(f"{name}: {sweep.description}\n    {summary_line(sweep)}")
    blocks.append("run one: python orchestrate.py --sweep NAME [--dry-run]")
    return "\n".join(blocks)
