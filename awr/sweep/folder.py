"""The sweep folder (`--out`): one driver at a time, writable, with room, and what a storage
fault (full disk, read-only or unwritable folder) looks like when one happens under a sweep.

A driver holds an exclusive `flock` on `<out>/.lock` for its whole life, taken before it writes
anything else there: a second driver on the same folder is refused at once, and the lock goes
with the process however it ends (SIGKILL included; the descriptor is close-on-exec, so Ray's
processes never inherit it). Before Ray starts the folder must take a write and have
MIN_FREE_BYTES free. A small reserve file (RESERVE_BYTES) is kept there while the sweep runs:
when the disk fills, the driver deletes it to end its MLflow runs (sqlite needs room to write).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from awr.sweep.spec import SweepError

LOCK_FILE = ".lock"
RESERVE_FILE = ".reserve"
MIN_FREE_BYTES = 200 * 2**20  # checkpoints, Ray's trial folders, the MLflow and Optuna stores
RESERVE_BYTES = 8 * 2**20  # room to end the MLflow runs once the disk is full
MIN_CACHE_FREE_BYTES = 50 * 2**20

# errno -> what went wrong, for faults of the storage a sweep writes to
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EIO: "an I/O error",
}
# what sqlite (through SQLAlchemy and MLflow) says for the same faults
SQLITE_FAULTS = {
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "the MLflow store is read-only",
    "disk I/O error": "an I/O error",
}
ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^\n]*)")


class StorageError(SweepError):
    """A folder the sweep writes to is missing, unwritable, read-only or full."""


class StorageFault(Exception):
    """A storage fault seen under a running sweep (in its trials' errors); the runner turns it
    into a StorageError line once Ray is stopped."""

    def __init__(self, fault: str) -> None:
        super().__init__(fault)
        self.fault = fault


@contextlib.contextmanager
def claim_folder(out: Path) -> Iterator[None]:
    """Create `out`, hold its lock, check it takes writes and has room, keep the reserve; the
    lock and the reserve go when the block ends."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"cannot create --out {out}: {error}; choose a folder you can write"
        ) from None
    lock = take_lock(out)
    try:
        check_room(out, "--out", MIN_FREE_BYTES + RESERVE_BYTES)
        keep_reserve(out)
        yield
    finally:
        free_reserve(out)
        os.close(lock)


def take_lock(out: Path) -> int:
    """An exclusive lock on `<out>/.lock` holding this driver's pid; refused while another
    process holds it."""
    path = out / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise StorageError(
            f"cannot write to --out {out}: {error}; choose a writable folder"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise SweepError(
            f"another sweep driver (pid {holder}) is running in {out}; wait for it to end, "
            "or use another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def check_room(folder: Path, what: str, needed: int) -> None:
    """`folder` takes a write and has `needed` bytes free (its reserve file counts as free)."""
    try:
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"awr")
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise StorageError(
            f"cannot write to {what} {folder}: {error}; choose a writable folder"
        ) from None
    reserve = folder / RESERVE_FILE
    free += reserve.stat().st_size if reserve.is_file() else 0
    if free < needed:
        raise StorageError(
            f"only {free / 2**20:.0f} MiB free on {what} {folder}; a sweep needs at least "
            f"{needed / 2**20:.0f} MiB: free some space or choose another folder"
        )


def keep_reserve(out: Path) -> None:
    path = out / RESERVE_FILE
    with open(path, "ab") as handle:
        if handle.tell() < RESERVE_BYTES:
            try:
                os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
            except OSError:  # a file system without fallocate: real bytes do the same
                handle.write(b"\0" * (RESERVE_BYTES - handle.tell()))


def free_reserve(out: Path) -> None:
    with contextlib.suppress(OSError):
        (out / RESERVE_FILE).unlink()


def check_cache(cache: Path) -> str | None:
    """A warning when the data cache cannot be written or is nearly full (trials then parse the
    data files again, which is slower but works); None when it is fine."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        check_room(cache, "the data cache", MIN_CACHE_FREE_BYTES)
    except (OSError, StorageError) as error:
        return f"warning: {error} (set AWR_CACHE_DIR to a writable folder to keep the cache)"
    return None


def fault_of(error: BaseException, out: Path, store: str) -> str | None:
    """The storage fault behind an error under a sweep: one its cause chain names, or a full
    `out` (libraries fail in many ways once the disk is full, e.g. reading a truncated file)."""
    found = storage_fault(error, store)
    if found is None:
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(out).free
            if free < RESERVE_BYTES:
                found = f"the disk is full ({free / 2**20:.1f} MiB free on {out})"
    return found


def storage_fault(error: BaseException | str, store: str = "the MLflow store") -> str | None:
    """What a storage fault behind `error` was (its cause chain walked; for a trial, the text
    Ray kept of its error), in a few words with the path (`store` for sqlite's own faults);
    None for any other error."""
    seen: set[int] = set()
    current: BaseException | str | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFault):
            return current.fault
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            where = f" ({current.filename})" if current.filename else ""
            return f"{STORAGE_ERRNOS[current.errno]}{where}"
        text = str(current)
        for marker, meaning in SQLITE_FAULTS.items():
            if marker in text:
                return f"{meaning} ({store}: {marker})"
        for match in ERRNO_TEXT.finditer(text):
            if int(match.group(1)) in STORAGE_ERRNOS:
                return f"{STORAGE_ERRNOS[int(match.group(1))]} ({match.group(2).strip()})"
        if isinstance(current, str):
            return None
        current = current.__cause__ or current.__context__
    return None
