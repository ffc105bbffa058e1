"""Files written whole or not at all: a temp file beside the target, then os.replace."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w", *, sync: bool = False) -> Iterator[IO[Any]]:
    """Open a hidden temp file in `path`'s folder (created if missing) for writing in `mode`
    ("w" text or "wb" bytes); when the block ends, flush it (and fsync when `sync`, for state a
    crash must not lose) and os.replace it onto `path`. On any error (a full disk, Ctrl-C)
    the temp file is removed and `path` stays as it was: a reader sees the old file or the
    new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer; open() (unlike mkstemp) gives the umask's permissions
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, mode) as handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, sync: bool = False) -> Path:
    """Write `text` to `path` whole or not at all (`atomic_write`); returns `path`."""
    with atomic_write(path, sync=sync) as handle:
        handle.write(text)
    return Path(path)
