"""Shared fixtures: the real data directory (CI sets AWR_DATA_DIR=../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    default = Path(__file__).parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("AWR_DATA_DIR", default)).resolve()
