"""Processes of a local Ray that a killed driver left behind, found by its session folder.

After a driver is killed with SIGKILL, some Ray helpers (`ray::DashboardAgent`,
`ray::RuntimeEnvAgent`) stay alive. Ray renames its processes with `setproctitle`, which
overwrites their command line and the environment block behind it, so neither tells whose they
are; every Ray process of a session, however, keeps log files of its session folder
(`<ray temp>/session_<time>_<driver pid>`) open, and the helpers Ray starts name the folder on
their command line. The driver records its pid (before Ray starts) and its session folder
(once Ray runs) in `<out>/ray_session.json`; it stops what outlives `ray.shutdown`, and the next
driver on the folder (which holds the folder's lock, so the recorded one is gone) stops what the
record names. Linux only (/proc); elsewhere nothing is found.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import time
from pathlib import Path

from awr.files import write_text_atomic

SESSION_FILE = "ray_session.json"
RAY_PREFIX = "ray::"  # the title Ray gives its workers and agents


def process_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])


def start_ticks(pid: int) -> int | None:
    """A live process's start time in clock ticks (tells it from a reused pid); None for a pid
    that is gone or a zombie (which holds nothing but its pid)."""
    stat = process_stat(pid)
    return None if stat is None or stat[0] in "ZX" else stat[1]


def ray_package() -> tuple[str, ...]:
    """The ray package's folder, as found and with links resolved (each ending in a slash)."""
    spec = importlib.util.find_spec("ray")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    found = {str(p) + os.sep for path in locations for p in (Path(path), Path(path).resolve())}
    return tuple(found)


def is_ray_process(command: list[str], package: tuple[str, ...]) -> bool:
    """A Ray worker or agent (by its title), or a program or script of the ray package."""
    if command and command[0].startswith(RAY_PREFIX):
        return True
    return any(arg.startswith(package) for arg in command[:3])


def holds(entry: Path, folder: str) -> bool:
    """Whether the process of /proc entry `entry` has a file under `folder` open."""
    try:
        descriptors = os.listdir(entry / "fd")
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(entry / "fd" / fd).startswith(folder):
                return True
    return False


def session_processes(session_dir: str) -> list[int]:
    """Pids of the live Ray processes of the session in `session_dir`: named on their command
    line or holding a file of it open (this process excluded)."""
    folder = str(Path(session_dir)) + os.sep
    package = ray_package()
    found = []
    proc = Path("/proc")
    if not proc.is_dir() or not session_dir:
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if start_ticks(int(entry.name)) is None or not is_ray_process(command, package):
            continue
        named = any(folder in arg + os.sep for arg in command)
        if named or holds(entry, folder):
            found.append(int(entry.name))
    return sorted(found)


def ray_temp_dir() -> Path:
    """Where a local Ray keeps its session folders (Ray's own rule: RAY_TMPDIR, TMPDIR, /tmp)."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return Path(base) / "ray"


def sessions_of(driver_pid: int, driver_ticks: int | None) -> list[str]:
    """Session folders a driver started, for a driver killed before it recorded its own: Ray
    names them `session_<time>_<driver pid>`; only those made after the driver started."""
    started = boot_time() + (driver_ticks or 0) / os.sysconf("SC_CLK_TCK")
    found = []
    for path in ray_temp_dir().glob(f"session_*_{driver_pid}"):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink() and path.stat().st_mtime >= started - 1:
                found.append(str(path))
    return found


def boot_time() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def stop_processes(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after `grace` seconds; waits (up to
    `grace` more) until they are gone."""
    ticks = {pid: start_ticks(pid) for pid in pids}
    alive = [pid for pid in pids if ticks[pid] is not None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in alive if start_ticks(pid) == ticks[pid]]


def record_session(out: Path, session_dir: str | None) -> None:
    """This driver's pid and start time, and (once Ray runs) its session folder."""
    session = {
        "driver_pid": os.getpid(),
        "driver_ticks": start_ticks(os.getpid()),
        "session_dir": session_dir,
    }
    write_text_atomic(out / SESSION_FILE, json.dumps(session) + "\n")


def recorded_sessions(out: Path) -> tuple[list[str], dict | None]:
    """The session folders of the record in `out` and the record itself (None without one)."""
    path = out / SESSION_FILE
    try:
        session = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], None
    if not isinstance(session, dict):
        return [], None
    if session.get("session_dir"):
        return [session["session_dir"]], session
    pid = session.get("driver_pid")
    return (sessions_of(pid, session.get("driver_ticks")) if isinstance(pid, int) else []), session


def clear_session(out: Path) -> int:
    """After ray.shutdown: stop the processes of this driver's session that outlived it and
    forget the record (only this driver's own). Returns how many were stopped."""
    folders, session = recorded_sessions(out)
    if session is None or session.get("driver_pid") != os.getpid():
        return 0
    stopped = reap(folders)
    with contextlib.suppress(OSError):
        (out / SESSION_FILE).unlink()
    return stopped


def reap_leftovers(out: Path) -> int:
    """Stop what the earlier driver of `out` left behind; returns how many processes. Call it
    while holding the folder's lock: the recorded driver is then gone."""
    folders, session = recorded_sessions(out)
    if session is None or session.get("driver_pid") == os.getpid():
        return 0
    stopped = reap(folders)
    with contextlib.suppress(OSError):
        (out / SESSION_FILE).unlink()
    return stopped


def reap(folders: list[str]) -> int:
    pids = sorted({pid for folder in folders for pid in session_processes(folder)})
    stop_processes(pids)
    return len(pids)
