"""Shared fixtures: the real data dir (AWR_DATA_DIR), the fake MLflow store of the analysis
tests (tests/fakestore.py), and a local Ray for the sweep tests.

Tests never download: AWR_NO_DOWNLOAD is set for the whole session (download tests pass
`download=True` and serve their files from 127.0.0.1). The real-data tests need AWR_DATA_DIR
holding the files in REAL_FILES; without it they are skipped, unless AWR_REQUIRE_DATA=1 (set
by CI), which makes a missing data dir a failure, so no real-data test can silently not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("AWR_NO_DOWNLOAD", "1")  # reaches the CLI subprocesses too

REAL_FILES = (
    "ml-1m/ml-1m.txt.gz",
    "ml-1m/ml-1m_seq.txt.gz",
    "ml-1m/item_map.tsv",
    "ml-1m/raw/ratings_users1-2999.dat.gz",
    "beauty_sasrec/Beauty.txt.gz",
    "beauty_s3rec_5core/Beauty.txt",
    "anime/anime.csv",
    "anime/rating_part23_of_23.csv",
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data dir; skips (fails under AWR_REQUIRE_DATA=1) when it is not there."""
    chosen = os.environ.get("AWR_DATA_DIR")
    missing = (
        list(REAL_FILES)
        if not chosen
        else [rel for rel in REAL_FILES if not (Path(chosen) / rel).is_file()]
    )
    if missing:
        where = f"AWR_DATA_DIR={chosen}" if chosen else "AWR_DATA_DIR is not set"
        reason = f"real-data test: {where}; missing {', '.join(missing)}"
        if os.environ.get("AWR_REQUIRE_DATA", "") not in ("", "0"):
            pytest.fail(f"{reason} (AWR_REQUIRE_DATA is set)", pytrace=False)
        pytest.skip(reason)
    return Path(chosen).resolve()


# --- MLflow for the analysis tests -------------------------------------------------------------


@pytest.fixture
def quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry and no artifact progress bars from MLflow (`usefixtures("quiet_mlflow")`)."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fake store (tests/fakestore.py), built once per session; its tracking URI."""
    import fakestore

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        return fakestore.build_store(tmp_path_factory.mktemp("mlflow_store"))


# --- Ray for the sweep tests (tests/test_sweep*.py) -------------------------------------------


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray for the whole session: 2 CPUs, no GPU, no dashboard."""
    from awr.sweep.cluster import prepare_environment

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
