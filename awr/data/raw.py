"""Read integer text files fast; preprocess raw rating sources into sequences (docs/protocol.md).

Every function here is pure: it reads the file it is given and returns new arrays. Every bad input
raises DataError naming the file, and the line where one line is at fault.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from awr.data.errors import DataError, data_error

GZIP_MAGIC = b"\x1f\x8b"
MAX_DIGITS = 18  # every integer of up to 18 digits fits in int64
ANIME_HEADER = b"user_id,anime_id,rating"


@dataclass(frozen=True)
class IntLines:
    """The integers of a text file, line by line. Blank lines are left out."""

    values: np.ndarray  # int64, every integer of the file in order
    counts: np.ndarray  # int64, how many integers each non-blank line holds
    line_no: np.ndarray  # int64, 1-based line number of each non-blank line


@dataclass(frozen=True)
class RawSequences:
    """Preprocessed data: `sequences[k]` holds user `users[k]`'s dense item ids in time order."""

    users: np.ndarray  # the users' ids in the source (int64, or object for string ids)
    sequences: list[np.ndarray]  # int64 arrays of dense item ids 1..num_items
    item_ids: np.ndarray  # item_ids[k - 1] is the source id of dense item k

    @property
    def num_items(self) -> int:
        return len(self.item_ids)


def read_bytes(path: str | Path) -> bytes:
    """The content of a plain or gzip file (detected by its magic bytes); empty is an error."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "file not found")
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise data_error(path, f"cannot read the file ({exc})") from exc
    if not data.strip():
        raise data_error(path, "file is empty")
    return data


def line_error(data: bytes, pos: int, path: str | Path, reason: str) -> DataError:
    """DataError for the line that holds byte `pos` of `data`, quoting that line."""
    line = data.count(b"\n", 0, pos) + 1
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    text = data[start : end if end >= 0 else len(data)].rstrip(b"\r")
    shown = text[:120].decode("utf-8", errors="replace")
    return data_error(path, f"{reason} (line: {shown!r})", line)


def parse_int_lines(
    data: bytes, path: str | Path, sep: bytes | None = None, allow_negative: bool = False
) -> IntLines:
    """Parse a text whose fields are all integers, vectorised (about 0.1 s per million lines).

    `sep=None` splits on spaces and tabs; otherwise fields are separated by exactly `sep`, and
    spaces or tabs are errors. Any field that is not a (non-negative unless `allow_negative`)
    integer of at most 18 digits raises DataError with its line number.
    """
    if sep is not None:
        space = min((p for p in (data.find(b" "), data.find(b"\t")) if p >= 0), default=-1)
        if space >= 0:
            raise line_error(data, space, path, f"unexpected space; separator is {sep.decode()!r}")
        # same-length replacement keeps byte positions, so errors can quote the original line
        text = data.replace(sep, b" " * len(sep))
    else:
        text = data
    arr = np.frombuffer(text, dtype=np.uint8)
    is_ws = (arr == 32) | (arr == 9) | (arr == 13) | (arr == 10)
    is_digit = (arr >= 48) & (arr <= 57)
    is_minus = (arr == 45) if allow_negative else np.zeros_like(is_ws)
    prev_ws = np.concatenate(([True], is_ws[:-1]))
    next_ws = np.concatenate((is_ws[1:], [True]))
    next_digit = np.concatenate((is_digit[1:], [False]))
    bad = ~(is_ws | is_digit | is_minus) | (is_minus & ~(prev_ws & next_digit))
    if bad.any():
        kind = "an integer" if allow_negative else "a non-negative integer"
        raise line_error(data, int(np.argmax(bad)), path, f"field is not {kind}")
    starts = np.flatnonzero(~is_ws & prev_ws)
    ends = np.flatnonzero(~is_ws & next_ws)
    too_long = (ends - starts + 1 - is_minus[starts]) > MAX_DIGITS
    if too_long.any():
        pos = int(starts[np.argmax(too_long)])
        raise line_error(data, pos, path, f"integer longer than {MAX_DIGITS} digits")
    if len(starts) == 0:
        raise data_error(path, "file holds no data")
    values = np.fromstring(text, dtype=np.int64, sep=" ")
    if len(values) != len(starts):  # cannot happen after the checks above; never return garbage
        raise data_error(path, "could not parse the integers of the file")
    line_idx = np.searchsorted(np.flatnonzero(arr == 10), starts)
    counts = np.bincount(line_idx)
    nonblank = np.flatnonzero(counts)
    return IntLines(values=values, counts=counts[nonblank], line_no=nonblank + 1)


def int_table(lines: IntLines, ncols: int, path: str | Path, layout: str) -> np.ndarray:
    """The lines as a (rows, ncols) array; a line with another field count raises DataError."""
    wrong = lines.counts != ncols
    if wrong.any():
        k = int(np.argmax(wrong))
        reason = f"expected {ncols} fields ({layout}), found {lines.counts[k]}"
        raise data_error(path, reason, int(lines.line_no[k]))
    return lines.values.reshape(-1, ncols)


def at_least(keys: np.ndarray, k: int) -> np.ndarray:
    """Mask of the entries whose key occurs at least k times in `keys`."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse] >= k


def group_sorted(
    users: np.ndarray, items: np.ndarray, item_ids: np.ndarray, path: str | Path
) -> RawSequences:
    """Split parallel arrays already grouped by user (rows of a user adjacent) into sequences."""
    if len(users) == 0:
        raise data_error(path, "no interaction is left after filtering")
    starts = np.flatnonzero(np.concatenate(([True], users[1:] != users[:-1])))
    sequences = np.split(items.astype(np.int64), starts[1:])
    return RawSequences(users=users[starts], sequences=sequences, item_ids=item_ids)


def preprocess_ml1m(
    path: str | Path,
    min_item: int = 5,
    min_user: int = 5,
    kept_movies: Iterable[int] | None = None,
) -> RawSequences:
    """GroupLens ML-1M `ratings.dat` (`UserID::MovieID::Rating::Timestamp`, plain or gzip).

    Drops movies with fewer than `min_item` ratings, then users with fewer than `min_user`;
    sorts each user's ratings by (timestamp, MovieID); users in ascending UserID; items numbered
    1..N by ascending MovieID. With `kept_movies`, exactly those movies are kept (`min_item` is
    not used) and numbered by ascending MovieID, whether or not they occur in the file: this
    lets a partial `ratings.dat` reproduce the ids of the full one.
    """
    lines = parse_int_lines(read_bytes(path), path, sep=b"::")
    table = int_table(lines, 4, path, "UserID::MovieID::Rating::Timestamp")
    user, movie, stamp = table[:, 0], table[:, 1], table[:, 3]
    if kept_movies is None:
        keep = at_least(movie, min_item)
    else:
        kept = np.unique(np.fromiter(kept_movies, dtype=np.int64))
        keep = np.isin(movie, kept)
    user, movie, stamp = user[keep], movie[keep], stamp[keep]
    keep = at_least(user, min_user)
    user, movie, stamp = user[keep], movie[keep], stamp[keep]
    item_ids = np.unique(movie) if kept_movies is None else kept
    order = np.lexsort((movie, stamp, user))
    items = np.searchsorted(item_ids, movie[order]) + 1
    return group_sorted(user[order], items, item_ids, path)


def preprocess_amazon(path: str | Path, min_user: int = 5, min_item: int = 5) -> RawSequences:
    """Amazon ratings CSV (`user,item,rating,time`, no header) by SASRec's procedure.

    One pass: drop every rating whose user has fewer than `min_user` or whose item has fewer
    than `min_item` ratings in the whole raw file (not iterated, so some users keep fewer);
    number users and items 1.. in order of first appearance among the kept ratings; sort each
    user's ratings by time with a stable sort (ties keep file order). Users in id order.
    """
    users, items, times = read_amazon_csv(path)
    ucodes, _ = pd.factorize(users)
    icodes, _ = pd.factorize(items)
    keep = (np.bincount(ucodes)[ucodes] >= min_user) & (np.bincount(icodes)[icodes] >= min_item)
    new_u, user_ids = pd.factorize(users[keep])
    new_i, item_ids = pd.factorize(items[keep])
    order = np.lexsort((times[keep], new_u))
    seqs = group_sorted(new_u[order], new_i[order] + 1, np.asarray(item_ids, dtype=object), path)
    return RawSequences(np.asarray(user_ids, dtype=object), seqs.sequences, seqs.item_ids)


def read_amazon_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users (str), items (str) and times (int64) of an Amazon `user,item,rating,time` CSV."""
    text = decode_utf8(read_bytes(path), path)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 4:
                reason = f"expected 4 fields (user,item,rating,time), found {len(row)}"
                raise data_error(path, reason, reader.line_num)
            user, item, rating, time = row
            if not user or not item:
                raise data_error(path, "empty user or item id", reader.line_num)
            try:
                float(rating)
                times.append(int(time))
            except ValueError:
                reason = f"rating {rating!r} or time {time!r} is not a number"
                raise data_error(path, reason, reader.line_num) from None
            users.append(user)
            items.append(item)
    except csv.Error as exc:
        raise data_error(path, f"malformed CSV ({exc})", reader.line_num) from None
    if not users:
        raise data_error(path, "file holds no data")
    as_obj = np.empty(len(users), dtype=object)
    as_obj[:] = users
    items_obj = np.empty(len(items), dtype=object)
    items_obj[:] = items
    return as_obj, items_obj, np.asarray(times, dtype=np.int64)


def decode_utf8(data: bytes, path: str | Path) -> str:
    """The bytes as UTF-8 text; an undecodable byte raises DataError naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise line_error(data, exc.start, path, "not UTF-8 text") from None


def preprocess_anime(
    path: str | Path,
    min_user: int = 5,
    min_item: int = 5,
    keep_unrated: bool = True,
    metadata: str | Path | None = None,
) -> RawSequences:
    """Kaggle "Anime Recommendations Database" `rating.csv` (`user_id,anime_id,rating`).

    An optional header line and CRLF endings are accepted; rating -1 means watched, not rated.
    There are no timestamps, so a user's sequence follows file order. In order: drop unrated
    rows unless `keep_unrated`; with `metadata` (Kaggle `anime.csv`), drop anime it does not
    list; then one pass like SASRec's: drop rows whose user has fewer than `min_user` or whose
    anime has fewer than `min_item` of the remaining rows. Users in order of first appearance,
    items numbered 1..N by ascending anime_id.
    """
    data = read_bytes(path)
    if data.startswith(ANIME_HEADER):
        data = data[len(ANIME_HEADER) :]  # line 1 becomes blank: line numbers stay right
    lines = parse_int_lines(data, path, sep=b",", allow_negative=True)
    table = int_table(lines, 3, path, "user_id,anime_id,rating")
    user, anime, rating = table[:, 0], table[:, 1], table[:, 2]
    bad = (user < 0) | (anime < 0) | (rating < -1) | (rating > 10)
    if bad.any():
        k = int(np.argmax(bad))
        reason = "ids must be >= 0 and ratings in -1..10"
        raise data_error(path, f"{reason}, found {table[k].tolist()}", int(lines.line_no[k]))
    keep = np.ones(len(user), dtype=bool) if keep_unrated else rating != -1
    if metadata is not None:
        keep &= np.isin(anime, read_anime_ids(metadata))
    user, anime = user[keep], anime[keep]
    keep = at_least(user, min_user) & at_least(anime, min_item)
    user, anime = user[keep], anime[keep]
    ucodes, user_ids = pd.factorize(user)
    order = np.argsort(ucodes, kind="stable")
    item_ids = np.unique(anime)
    items = np.searchsorted(item_ids, anime[order]) + 1
    seqs = group_sorted(ucodes[order], items, item_ids, path)
    return RawSequences(np.asarray(user_ids, dtype=np.int64), seqs.sequences, item_ids)


def read_anime_ids(path: str | Path) -> np.ndarray:
    """Sorted anime ids of Kaggle `anime.csv` (header `anime_id,name,genre,...`)."""
    reader = csv.reader(io.StringIO(decode_utf8(read_bytes(path), path), newline=""))
    header = next(reader)
    if "anime_id" not in header:
        raise data_error(path, "header has no 'anime_id' column", 1)
    col = header.index("anime_id")
    ids: list[int] = []
    try:
        for row in reader:
            if not row:
                continue
            try:
                ids.append(int(row[col]))
            except (IndexError, ValueError):
                raise data_error(path, "missing or non-integer anime_id", reader.line_num) from None
    except csv.Error as exc:
        raise data_error(path, f"malformed CSV ({exc})", reader.line_num) from None
    return np.unique(np.asarray(ids, dtype=np.int64))
