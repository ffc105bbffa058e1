"""Load a dataset by name or path into SequenceData, with an on-disk cache (docs/protocol.md).

Sequence files, detected by shape (a file whose every non-blank line has exactly 2 integers is
read as pairs; any other all-integer file as seq):
  * pairs: `user item` per line; a user's lines adjacent and in time order (SASRec's format).
  * seq: `user item item ...` per line, items in time order (S3-Rec / STOSA's format).
A seq file whose users each have exactly one item reads the same either way, so the heuristic
never changes the result. Both may be gzip-compressed. Item ids must be >= 1; num_items is the
largest item id, which may not exceed `item_id_bound` (sparse ids must be re-indexed). Raw
sources given as a path: a `::`-separated file is GroupLens ML-1M `ratings.dat`; a `.csv` with
4 fields per line is Amazon `user,item,rating,time`, with 3 fields Kaggle anime
`user_id,anime_id,rating` (see raw.py for their preprocessing, default options).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch

from awr.data import raw
from awr.data.download import ensure_dataset
from awr.data.errors import DataError, data_error
from awr.data.sources import SOURCES
from awr.files import atomic_write

CACHE_VERSION = 1
ITEM_ID_FLOOR = 2**20  # about a million ids: a 64-wide embedding of 256 MiB
ITEM_ID_RATIO = 8


@dataclass(frozen=True, eq=False)
class SequenceData:
    """Full interaction sequences, one int64 array per user (items 1..num_items, time order)."""

    name: str
    sequences: list[np.ndarray]  # user order as in the source; arrays are read-only
    num_items: int
    checksum: str  # sha256 hex of the source file
    source: str  # path of the source file


def resolve_data_dir(data_dir: str | None) -> Path:
    """`data_dir` if given, else the environment's AWR_DATA_DIR, else `<user cache>/awr/data`
    (`~/.cache/awr/data` on Linux): where named datasets are read, and downloaded to."""
    if data_dir or os.environ.get("AWR_DATA_DIR"):
        return Path(data_dir or os.environ["AWR_DATA_DIR"]).expanduser()
    return pooch.os_cache("awr") / "data"


def resolve_cache_dir(cache_dir: str | None) -> Path:
    """`cache_dir` if given, else the environment's AWR_CACHE_DIR, else `<user cache>/awr`
    (`~/.cache/awr` on Linux): the parsed arrays, keyed by the source file's sha256."""
    chosen = cache_dir or os.environ.get("AWR_CACHE_DIR")
    return Path(chosen).expanduser() if chosen else pooch.os_cache("awr")


def load_dataset(
    name: str,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    download: bool | None = None,
) -> SequenceData:
    """Load a named dataset (awr.data.sources.SOURCES) or a file given by path, cached by its
    sha256. A named dataset missing from the data dir is downloaded first unless `download` is
    False (None: unless AWR_NO_DOWNLOAD is set); see awr.data.download."""
    path, label = resolve_source(name, resolve_data_dir(data_dir), download)
    kind = detect_kind(path)
    checksum = sha256_file(path)
    cache = resolve_cache_dir(cache_dir) / f"{checksum}.{kind}.v{CACHE_VERSION}.npz"
    flat = read_cache(cache)
    if flat is None:
        flat = parse_source(path, kind)
        try:
            write_cache(cache, *flat)
        except OSError as exc:
            warnings.warn(f"could not write the data cache {cache}: {exc}", stacklevel=2)
    items, offsets = flat
    return from_flat(label, items, offsets, checksum, str(path))


def resolve_source(name: str, data_dir: Path, download: bool | None = None) -> tuple[Path, str]:
    """The file a dataset name stands for (downloaded if needed), and the dataset's label."""
    if name in SOURCES:
        return ensure_dataset(name, data_dir, download), name
    if name == "synthetic":
        raise DataError("'synthetic' is generated, not loaded: use awr.data.synthetic")
    for path in (Path(name).expanduser(), data_dir / name):
        if path.is_file():
            label = path.name.removesuffix(".gz")
            return path, label.rsplit(".", 1)[0] if "." in label else label
    valid = ", ".join([*SOURCES, "synthetic"])
    raise data_error(name, f"unknown dataset and no such file; valid names: {valid}, or a path")


def detect_kind(path: Path) -> str:
    """'ml1m', 'amazon', 'anime' (raw sources) or 'sequences' (pairs or seq), from the file."""
    if path.name.removesuffix(".gz").lower().endswith(".csv"):
        line = first_line(path)
        if line.startswith(raw.ANIME_HEADER) or line.count(b",") == 2:
            return "anime"
        if line.count(b",") == 3:
            return "amazon"
        raise data_error(path, "a .csv must have 4 (Amazon) or 3 (Kaggle anime) fields", 1)
    return "ml1m" if b"::" in first_line(path) else "sequences"


def first_line(path: Path, limit: int = 1 << 16) -> bytes:
    """The first non-blank line of a plain or gzip file (at most `limit` bytes are read)."""
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == raw.GZIP_MAGIC
        with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
            head = fh.read(limit)
    except (OSError, EOFError) as exc:
        raise data_error(path, f"cannot read the file ({exc})") from exc
    for line in head.splitlines():
        if line.strip():
            return line.strip()
    raise data_error(path, "file is empty")


def sha256_file(path: Path) -> str:
    """sha256 hex digest of the file's bytes (as stored, compressed or not)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_source(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat item ids and per-user offsets (len users + 1) of a source file of the given kind."""
    if kind == "sequences":
        return parse_sequence_file(path)
    preprocess = {
        "ml1m": raw.preprocess_ml1m,
        "amazon": raw.preprocess_amazon,
        "anime": raw.preprocess_anime,
    }[kind]
    seqs = preprocess(path).sequences
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    return np.concatenate(seqs).astype(np.int64), offsets


def parse_sequence_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Flat items and offsets of a pairs or seq file (format by shape, see the module doc)."""
    lines = raw.parse_int_lines(raw.read_bytes(path), path)
    if (lines.counts == 2).all():
        table = lines.values.reshape(-1, 2)
        users, items = table[:, 0], table[:, 1]
        starts = np.flatnonzero(np.concatenate(([True], users[1:] != users[:-1])))
        offsets = np.append(starts, len(items))
        item_line = lines.line_no
        user_line = lines.line_no[starts]
        block_users = users[starts]
    else:
        short = lines.counts < 2
        if short.any():
            line = int(lines.line_no[np.argmax(short)])
            raise data_error(path, "expected 'user item item ...' (at least 2 fields)", line)
        bounds = np.concatenate(([0], np.cumsum(lines.counts)))
        is_user = np.zeros(len(lines.values), dtype=bool)
        is_user[bounds[:-1]] = True
        items = lines.values[~is_user]
        offsets = bounds - np.arange(len(bounds))
        item_line = np.repeat(lines.line_no, lines.counts - 1)
        user_line = lines.line_no
        block_users = lines.values[bounds[:-1]]
    again = first_repeat(block_users)
    if again >= 0:
        reason = (
            f"user {block_users[again]} appears again; a user's items must be on adjacent lines"
        )
        raise data_error(path, reason, int(user_line[again]))
    bad = items < 1
    if bad.any():
        reason = f"item id {items[np.argmax(bad)]} < 1 (0 is reserved for padding)"
        raise data_error(path, reason, int(item_line[np.argmax(bad)]))
    bound = item_id_bound(len(items))
    far = items > bound
    if far.any():
        k = int(np.argmax(far))
        reason = (
            f"item id {items[k]} is beyond {bound:,}, the largest id a file of "
            f"{len(items):,} interactions may use (the model keeps one embedding row per id up "
            "to the largest); re-index the items to 1..N"
        )
        raise data_error(path, reason, int(item_line[k]))
    return items, offsets


def item_id_bound(interactions: int) -> int:
    """The largest item id accepted in a file of `interactions` interactions: ITEM_ID_RATIO ids
    per interaction (a file whose ids are dense uses at most one), and never less than
    ITEM_ID_FLOOR. Checked before anything is sized by the largest id."""
    return max(ITEM_ID_FLOOR, ITEM_ID_RATIO * interactions)


def first_repeat(ids: np.ndarray) -> int:
    """Index of the first entry equal to an earlier one, or -1."""
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    return int(order[1:][same].min()) if same.any() else -1


def read_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Flat items and offsets from a cache file; None if absent, corrupt or inconsistent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            items, offsets = npz["items"], npz["offsets"]
    except Exception:  # a corrupt cache can fail in many ways; it is rebuilt, never trusted
        return None
    valid = (
        items.dtype == np.int64
        and offsets.dtype == np.int64
        and items.ndim == 1
        and offsets.ndim == 1
        and len(offsets) >= 2
        and offsets[0] == 0
        and offsets[-1] == len(items)
        and bool((np.diff(offsets) >= 1).all())
        and bool((items >= 1).all())
        and int(items.max()) <= item_id_bound(len(items))
    )
    return (items, offsets) if valid else None


def write_cache(path: Path, items: np.ndarray, offsets: np.ndarray) -> None:
    """Write the cache atomically (awr/files.py)."""
    with atomic_write(path, "wb", sync=True) as handle:
        np.savez(handle, items=items, offsets=offsets)


def from_flat(
    name: str, items: np.ndarray, offsets: np.ndarray, checksum: str, source: str
) -> SequenceData:
    """SequenceData whose per-user arrays are read-only views of one flat array."""
    if len(items) == 0:
        raise data_error(source, "no interactions")
    items = np.array(items, dtype=np.int64)
    items.flags.writeable = False
    sequences = np.split(items, offsets[1:-1])
    return SequenceData(name, sequences, int(items.max()), checksum, source)


def dataset_stats(data: SequenceData) -> dict[str, int | float]:
    """Counts and sequence-length statistics; users_lt3 are trained on only, not evaluated."""
    lengths = np.fromiter((len(s) for s in data.sequences), dtype=np.int64)
    users_lt3 = int((lengths < 3).sum())
    return {
        "users": len(lengths),
        "items": data.num_items,
        "interactions": int(lengths.sum()),
        "min_len": int(lengths.min()),
        "max_len": int(lengths.max()),
        "mean_len": float(lengths.mean()),
        "median_len": float(np.median(lengths)),
        "users_lt3": users_lt3,
        "eval_users": len(lengths) - users_lt3,
    }
