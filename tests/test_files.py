"""awr.files: a file is written whole or not at all, and config.field_value types a field's
value whatever carried it (command line, MLflow param, Optuna, JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

from awr.config import ConfigError, field_value
from awr.files import atomic_write, write_text_atomic


def test_an_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.json"
    assert write_text_atomic(path, "one\n", sync=True) == path
    assert path.read_text() == "one\n"
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(path) as handle:
        handle.write("half of tw")
        raise RuntimeError("disk full")
    assert path.read_text() == "one\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]  # no temp file left
    with atomic_write(path, "wb") as handle:
        handle.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_field_value_types_a_value_whatever_carried_it() -> None:
    assert field_value("hidden_size", "64") == 64
    assert field_value("hidden_size", "64.0") == 64 and field_value("hidden_size", 64.0) == 64
    assert field_value("lr", 0) == 0.0 and isinstance(field_value("lr", 0), float)
    assert field_value("lr", "0.001") == 0.001
    assert field_value("compile", "False") is False and field_value("compile", "on") is True
    assert field_value("refine_per_head", True) is True
    assert field_value("dataset", "ml-1m") == "ml-1m"
    for key, value, message in (
        ("hidden_size", "64.5", "hidden_size expects int, got 64.5"),
        ("hidden_size", True, "hidden_size expects int, got True"),
        ("compile", "maybe", "compile expects a bool"),
        ("lr", "fast", "lr expects float"),
        ("colour", "red", "unknown key 'colour'; valid keys: dataset, backbone"),
    ):
        with pytest.raises(ConfigError, match=message):
            field_value(key, value)
