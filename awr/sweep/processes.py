"""Processes of a local Ray that a killed driver left behind, found by their Ray node id.

After a driver is killed with SIGKILL, some Ray helpers (`ray::DashboardAgent`,
`ray::RuntimeEnvAgent`) stay alive. The driver records its pid and node id in the sweep folder;
the next driver on that folder stops the processes of that node, by pid, once the recorded
driver is gone. Linux only (/proc); elsewhere nothing is found.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

SESSION_FILE = "ray_session.json"


def start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks (tells a live pid from a reused one)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def node_processes(node_id: str) -> list[int]:
    """Pids whose environment names Ray node `node_id` (this process excluded)."""
    marker = f"RAY_NODE_ID={node_id}".encode()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_processes(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after `grace` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if start_ticks(pid) is not None]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def record_session(out: Path, node_id: str) -> None:
    session = {
        "driver_pid": os.getpid(),
        "driver_ticks": start_ticks(os.getpid()),
        "node_id": node_id,
    }
    (out / SESSION_FILE).write_text(json.dumps(session) + "\n")


def clear_session(out: Path, node_id: str) -> None:
    """After ray.shutdown: stop any process of our node that outlived it, forget the session."""
    stop_processes(node_processes(node_id))
    (out / SESSION_FILE).unlink(missing_ok=True)


def live_driver(out: Path) -> int | None:
    """The pid of a driver still running on `out`, if any."""
    path = out / SESSION_FILE
    if not path.exists():
        return None
    session = json.loads(path.read_text())
    pid, ticks = session["driver_pid"], session["driver_ticks"]
    alive = ticks is not None and start_ticks(pid) == ticks
    return pid if alive and pid != os.getpid() else None


def reap_leftovers(out: Path) -> int:
    """Stop the processes a dead earlier driver on `out` left behind; returns how many."""
    path = out / SESSION_FILE
    if not path.exists() or live_driver(out) is not None:
        return 0
    pids = node_processes(json.loads(path.read_text())["node_id"])
    stop_processes(pids)
    path.unlink(missing_ok=True)
    return len(pids)
