"""The MLflow store a command reads: `--tracking-uri` with a relative sqlite path taken from the
current folder, else the sweep folder's own `sqlite:////<abs out>/mlflow.db`. A command that
only reads (report, ui) refuses a sqlite store that does not exist instead of creating an
empty one."""

from __future__ import annotations

from pathlib import Path

from awr.errors import AwrError
from awr.store import default_tracking_uri, sqlite_path, sqlite_uri


class CommandError(AwrError, ValueError):
    """A command cannot do what was asked; the message says why and what to do instead."""


def tracking_uri_for(uri: str | None) -> str | None:
    """`uri` with a relative sqlite path made absolute against the current folder
    (`sqlite:///runs/mlflow.db` -> `sqlite:////<cwd>/runs/mlflow.db`); other URIs as given."""
    path = None if uri is None else sqlite_path(uri)
    if path is None:
        return uri
    path = path.expanduser()
    return uri if path.is_absolute() else sqlite_uri(path.resolve())


def existing_store(uri: str | None, out: Path) -> str:
    """The tracking URI for reading the sweep in `out` (or `uri`); a sqlite file that is not
    there is an error, so that nothing creates an empty store in its place."""
    chosen = tracking_uri_for(uri) or default_tracking_uri(out)
    path = sqlite_path(chosen)
    if path is not None and not path.is_file():
        fix = (
            "check --tracking-uri"
            if uri
            else f"run a sweep with --out {out} first, or give the store with --tracking-uri"
        )
        raise CommandError(f"no MLflow store at {path}; {fix}")
    return chosen
