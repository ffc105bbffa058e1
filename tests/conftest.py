"""Shared fixtures: the real data directory (CI sets AWR_DATA_DIR=../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    default = Path(__file__).parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("AWR_DATA_DIR", default)).resolve()


# --- Ray for the sweep tests (tests/test_sweep*.py) -------------------------------------------


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray for the whole session: 2 CPUs, no GPU, no dashboard."""
    from awr.sweep.environment import prepare_environment

    prepare_environment(local=True)
    import ray

    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        object_store_memory=200 * 2**20,
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
