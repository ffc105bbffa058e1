"""The import graph of the project's own packages: every import (at module level or inside a
function) runs down the layers, never up, so there is no cycle. A layer may import any layer
listed before it and itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top. A module's layer is its first two name parts (awr.models, awr.sweep, ...) or its
# top-level package (analysis, sweeps).
LAYERS = (
    ("awr", "awr.errors", "awr.files", "awr.schema", "awr.config", "awr.eta"),
    ("awr.data",),
    ("awr.models",),
    ("awr.eval",),
    ("awr.train",),
    ("awr.trial", "awr.packed_trial"),
    ("awr.store", "awr.tracking"),
    ("awr.sweep",),
    ("sweeps",),
    ("awr.bench",),
    ("analysis",),
    ("awr.cli",),
    ("orchestrate",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
OWN = ("awr", "analysis", "sweeps", "orchestrate")


def layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "awr" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The project modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in OWN}
    return found


def source_files() -> list[Path]:
    files = [ROOT / "orchestrate.py"]
    for package in ("awr", "analysis", "sweeps"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def test_every_module_has_a_layer() -> None:
    unplaced = {layer(module_name(path)) for path in source_files()} - set(RANK)
    assert not unplaced, f"add these to LAYERS: {sorted(unplaced)}"


def test_no_import_runs_up_the_layers() -> None:
    upward = []
    for path in source_files():
        own = layer(module_name(path))
        for target in sorted(imports(path)):
            if RANK.get(layer(target), -1) > RANK[own]:
                upward.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from awr.sweep.spec import Sweep\n    import awr.cli\n")
    assert imports(bad) == {"awr.sweep.spec", "awr.cli"}
    assert RANK[layer("awr.sweep.spec")] > RANK["awr.models"]


def test_no_module_imports_itself_through_others() -> None:
    names = {module_name(path): path for path in source_files()}
    graph = {
        name: {target for target in imports(path) if target in names and target != name}
        for name, path in names.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


MAX_LINES = 300  # small files with one job each: a longer module is split by concern


def test_no_module_is_over_the_line_limit() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in source_files()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"over {MAX_LINES} lines:\n" + "\n".join(long)
