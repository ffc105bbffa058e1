"""Download a named dataset into the data dir on first use, verified (sources.py says how).

`ensure_dataset(name, data_dir)` returns the local file of a named dataset. When none of its
files is in the data dir it downloads the source with pooch (a tqdm bar with bytes, rate and
time left on stderr; timeouts and retries as awr.data.fetch says: more tries after a broken
connection, a server error or a corrupt download, none after an HTTP 4xx). Everything is
written into a fresh `.download-*` folder beside the target, verified, then moved into place
with os.replace; that folder is removed on success and on every fault, so an interrupted,
truncated or corrupt download leaves nothing behind and the next run starts clean (folders a
killed process left are removed by the next download once an hour old).

Environment: AWR_DATA_MIRROR=<base URL> fetches `<base URL>/<name>/<file name>` instead of the
canonical URL (same checks); AWR_NO_DOWNLOAD=1 (or `--no-download`) turns downloads off, and
a missing dataset is then an error naming the URL, the file and where to put it; AWR_NO_VERIFY=1
accepts a download (or an ML-1M result) that fails verification, with a warning, instead of
refusing it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pooch

from awr.data import raw
from awr.data.errors import DataError, data_error
from awr.data.fetch import fetch
from awr.data.sources import SOURCES, Source, canonical_text, sequence_counts

MIRROR_ENV = "AWR_DATA_MIRROR"
NO_DOWNLOAD_ENV = "AWR_NO_DOWNLOAD"
NO_VERIFY_ENV = "AWR_NO_VERIFY"
PARTIAL_PREFIX = ".download-"
STALE_S = 3600.0  # a partial folder untouched this long belongs to a process that was killed


def env_flag(name: str) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off/empty (any case)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise DataError(f"{name}={os.environ[name]!r}: expected 1 or 0")


def ensure_dataset(
    name: str, data_dir: Path, download: bool | None = None, verify: bool | None = None
) -> Path:
    """The local file of the named dataset, downloaded and verified first if it is missing.

    `download` / `verify` None follow AWR_NO_DOWNLOAD / AWR_NO_VERIFY (both default on).
    """
    source = SOURCES[name]
    for rel in source.files:
        if (data_dir / rel).is_file():
            return data_dir / rel
    download = not env_flag(NO_DOWNLOAD_ENV) if download is None else download
    verify = not env_flag(NO_VERIFY_ENV) if verify is None else verify
    target = data_dir / source.target
    if source.url is None:
        raise data_error(
            target,
            f"dataset {name!r} not found: {source.what}; download its "
            f"{source.file_name} and put it at this path",
        )
    placed = data_dir / source.by_hand
    if source.archive is not None and placed.is_file():  # placed by hand: no download
        return prepare_archive(placed, source, target, verify, str(placed))
    url = source_url(source)
    if not download:
        how = " (it is unpacked and preprocessed on first use)" if source.archive else ""
        raise DataError(
            f"dataset {name!r} is not in the data dir and downloading is off "
            f"(--no-download or {NO_DOWNLOAD_ENV}): download {url} and put it at {placed}{how}"
        )
    with partial_dir(target.parent) as work:
        say(f"downloading dataset {name!r} from {url}")
        sha256 = None if source.archive or not verify else source.sha256
        override = f"Set {NO_VERIFY_ENV}=1 to accept it, or "
        got = fetch(url, work / source.file_name, sha256, placed, override)
        if source.archive is not None:
            return prepare_archive(got, source, target, verify, url)
        report_check(got, source, url, verify)
        os.chmod(got, 0o666 & ~current_umask())  # pooch's temporary file is owner-only
        os.replace(got, target)
    say(f"dataset {name!r} stored at {target}")
    return target


def source_url(source: Source) -> str:
    """The canonical URL, or its place on the AWR_DATA_MIRROR mirror when that is set."""
    assert source.url is not None
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return source.url
    if not mirror.startswith(("http://", "https://")):
        raise DataError(f"{MIRROR_ENV}={mirror!r}: expected an http:// or https:// base URL")
    return source.mirror_url(mirror)


def report_check(path: Path, source: Source, url: str, verify: bool) -> None:
    """Say that the download was verified (pooch refused a mismatch), or, with verification
    off, warn when it is not the published file."""
    if verify:
        say(f"dataset {source.name!r} verified: sha256 {source.sha256}")
        return
    digest = pooch.file_hash(str(path), alg="sha256")
    if digest != source.sha256:
        say(
            f"warning: {url} is not the published file (sha256 {digest}, expected "
            f"{source.sha256}); accepted because {NO_VERIFY_ENV} is set"
        )


def prepare_archive(zip_path: Path, source: Source, target: Path, verify: bool, label: str) -> Path:
    """Unzip the source's `member` (ML-1M's `ratings.dat`), preprocess it, check the result's
    counts and canonical-text sha256, and store that text at `target` (atomically, so its
    sha256sum is the embedded value). `label` names the zip in messages."""
    member = source.member or ""
    with partial_dir(target.parent) as work:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                ratings = Path(archive.extract(member, work))
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise DataError(f"{label}: not the {source.name} zip ({exc})") from None
        try:
            sequences = raw.preprocess_ml1m(ratings).sequences
        except DataError as exc:
            raise DataError(str(exc).replace(str(ratings), f"{label}:{member}")) from None
        text = canonical_text(sequences)
        counts = sequence_counts(sequences)
        digest = hashlib.sha256(text).hexdigest()
        if (counts, digest) != (source.counts, source.sha256):
            found = " / ".join(f"{n:,}" for n in counts)
            wanted = " / ".join(f"{n:,}" for n in source.counts or ())
            detail = (
                f"{label}: the preprocessed {member} is not the published {source.name}: "
                f"{found} users / items / interactions and sequence sha256 {digest}, "
                f"expected {wanted} and {source.sha256}"
            )
            if verify:
                raise DataError(f"{detail}; nothing was kept. Set {NO_VERIFY_ENV}=1 to accept it")
            say(f"warning: {detail}; accepted because {NO_VERIFY_ENV} is set")
        else:
            found = " / ".join(f"{n:,}" for n in counts)
            say(f"dataset {source.name!r} verified: {found} users / items / interactions")
        staged = work / target.name
        staged.write_bytes(text)
        os.replace(staged, target)
    say(f"dataset {source.name!r} stored at {target}")
    return target


class partial_dir:
    """A fresh `.download-*` folder in `parent`, removed on exit whatever happens."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.path: Path | None = None

    def __enter__(self) -> Path:
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            remove_stale(self.parent)
            self.path = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=self.parent))
        except OSError as exc:
            raise DataError(f"{self.parent}: cannot write to the data dir ({exc})") from None
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def remove_stale(parent: Path) -> None:
    """Remove `.download-*` folders in `parent` whose newest file is older than STALE_S."""
    now = time.time()
    for folder in parent.glob(f"{PARTIAL_PREFIX}*"):
        try:
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
        except OSError:
            continue
        if now - newest > STALE_S:
            shutil.rmtree(folder, ignore_errors=True)


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def say(line: str) -> None:
    """One progress line on stderr (where pooch's bar goes), so stdout stays for results."""
    print(line, file=sys.stderr, flush=True)
