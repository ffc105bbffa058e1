"""Leftovers of a killed driver: the processes of its Ray session are found by the session folder
(their command line, or a file of it they hold open; never their environment, which Ray's
`setproctitle` overwrites), stopped by pid by the next driver, and only Ray's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from awr.sweep.processes import (
    SESSION_FILE,
    clear_session,
    reap_leftovers,
    record_session,
    session_processes,
    sessions_of,
    start_ticks,
)

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")

HOLD = """import os, time
log = open(os.environ.pop("LOG"), "a")
print("ready", flush=True)
time.sleep(60)"""


def holder(log: Path, title: str | None) -> subprocess.Popen:
    """A process holding `log` open, titled like a Ray agent (`ray::...`) or a plain python;
    like a Ray agent after `setproctitle`, its command line does not name the folder."""
    argv = [title or sys.executable, "-c", HOLD]
    process = subprocess.Popen(
        argv,
        executable=sys.executable,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOG": str(log)},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def fake_session(root: Path, name: str) -> Path:
    (root / name / "logs").mkdir(parents=True)
    return root / name


def test_leftovers_of_a_dead_driver_are_found_by_their_session_folder(tmp_path: Path) -> None:
    session = fake_session(tmp_path, "session_2026-01-01_00-00-00_000001_4242")
    other = fake_session(tmp_path, "session_2026-01-01_00-00-00_000001_42420")  # same prefix
    agent = holder(session / "logs" / "dashboard_agent.log", "ray::DashboardAgent")
    stranger = holder(other / "logs" / "raylet.out", "ray::IDLE")
    reader = holder(session / "logs" / "raylet.out", None)  # e.g. `tail -f` on a log: not Ray
    try:
        assert session_processes(str(session)) == [agent.pid]
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        record = {"driver_pid": dead.pid, "driver_ticks": 1, "session_dir": str(session)}
        (tmp_path / SESSION_FILE).write_text(json.dumps(record))
        assert reap_leftovers(tmp_path) == 1
        assert agent.wait(timeout=10) is not None
        assert session_processes(str(session)) == []
        assert not (tmp_path / SESSION_FILE).exists()
        assert stranger.poll() is None and reader.poll() is None
    finally:
        for process in (agent, stranger, reader):
            process.kill()
            process.wait()


def test_a_record_without_its_folder_finds_the_sessions_by_the_driver_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver killed while Ray started: Ray names the session folder by the driver's pid."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    me = os.getpid()
    folder = fake_session(tmp_path / "ray", f"session_2026-01-01_00-00-00_000001_{me}")
    fake_session(tmp_path / "ray", f"session_2026-01-01_00-00-00_000001_{me + 1}")
    assert sessions_of(me, start_ticks(me)) == [str(folder)]
    old = time.time() - 10 * 365 * 86400
    os.utime(folder, (old, old))  # a folder of an earlier process with the same pid
    assert sessions_of(me, start_ticks(me)) == []


def test_only_the_driver_that_owns_the_record_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # clear_session of a record without a folder looks for sessions named by this pid: keep it
    # off the real Ray temp folder, where this pytest's own Ray (the ray_local fixture) lives
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "no-ray"))
    record = {"driver_pid": 1, "driver_ticks": start_ticks(1), "session_dir": str(tmp_path)}
    (tmp_path / SESSION_FILE).write_text(json.dumps(record))
    assert clear_session(tmp_path) == 0
    assert (tmp_path / SESSION_FILE).exists()  # another driver's record stays
    record_session(tmp_path, None)
    assert reap_leftovers(tmp_path) == 0  # this very process is not an earlier driver
    assert (tmp_path / SESSION_FILE).exists()
    clear_session(tmp_path)
    assert not (tmp_path / SESSION_FILE).exists()


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while start_ticks(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # exited but not yet waited for: a zombie
    assert Path(f"/proc/{child.pid}").exists()
    assert start_ticks(child.pid) is None
    child.wait()
