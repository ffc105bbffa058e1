"""Leftovers of a killed driver: processes of its Ray node are found by node id and stopped by
pid on the next start, but never while that driver still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from awr.sweep.processes import (
    SESSION_FILE,
    live_driver,
    node_processes,
    reap_leftovers,
    record_session,
    start_ticks,
)

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")


def test_leftovers_of_a_dead_driver_are_stopped(tmp_path: Path) -> None:
    node = "test-node-" + os.urandom(4).hex()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "RAY_NODE_ID": node},
    )
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        session = {"driver_pid": dead.pid, "driver_ticks": 1, "node_id": node}
        (tmp_path / SESSION_FILE).write_text(json.dumps(session))
        assert node_processes(node) == [sleeper.pid]
        assert live_driver(tmp_path) is None
        assert reap_leftovers(tmp_path) == 1
        assert sleeper.wait(timeout=10) is not None
        assert node_processes(node) == []
        assert not (tmp_path / SESSION_FILE).exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_a_running_driver_is_left_alone(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        session = {"driver_pid": parent.pid, "driver_ticks": start_ticks(parent.pid),
                   "node_id": "n"}  # fmt: skip
        (tmp_path / SESSION_FILE).write_text(json.dumps(session))
        assert live_driver(tmp_path) == parent.pid
        assert reap_leftovers(tmp_path) == 0
        assert parent.poll() is None
    finally:
        parent.kill()
        parent.wait()
    record_session(tmp_path, "mine")
    assert live_driver(tmp_path) is None  # this very process is not "another" driver
