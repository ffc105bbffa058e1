"""load_dataset: real files and stats, format detection, bad inputs, the cache; synthetic data."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pooch
import pytest

from awr.data import datasets
from awr.data.datasets import SequenceData, dataset_stats, load_dataset, resolve_data_dir
from awr.data.errors import DataError
from awr.data.synthetic import planted_dataset

TINY_SEQ = "10 5 1 7 3 9 2\n11 4\n12 2 8\n13 6 3 1\n14 9 8 7 6\n"
TINY_SEQS = [[5, 1, 7, 3, 9, 2], [4], [2, 8], [6, 3, 1], [9, 8, 7, 6]]


def to_pairs(seq_text: str) -> str:
    rows = [line.split() for line in seq_text.splitlines()]
    return "".join(f"{row[0]} {item}\n" for row in rows for item in row[1:])


def as_lists(data: SequenceData) -> list[list[int]]:
    return [s.tolist() for s in data.sequences]


def load(path: Path | str, cache: Path) -> SequenceData:
    return load_dataset(str(path), data_dir=str(cache.parent), cache_dir=str(cache))


# --- real files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stats"),
    [
        ("ml-1m", (6040, 3416, 999611, 18, 2277, 0)),
        ("beauty", (52204, 57289, 394908, 1, 293, 1706)),
        ("beauty-5core", (22363, 12101, 198502, 5, 204, 0)),
    ],
)
def test_real_datasets_match_table1(data_dir: Path, tmp_path: Path, name: str, stats) -> None:
    data = load_dataset(name, data_dir=str(data_dir), cache_dir=str(tmp_path))
    got = dataset_stats(data)
    keys = ("users", "items", "interactions", "min_len", "max_len", "users_lt3")
    assert tuple(got[k] for k in keys) == stats
    assert got["eval_users"] == stats[0] - stats[5]
    assert got["mean_len"] == pytest.approx(stats[2] / stats[0])
    assert data.name == name
    assert data.checksum == hashlib.sha256(Path(data.source).read_bytes()).hexdigest()
    assert all(s.dtype == np.int64 and s.min() >= 1 for s in data.sequences[:100])
    cached = load_dataset(name, data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 1
    assert all(np.array_equal(a, b) for a, b in zip(cached.sequences, data.sequences, strict=True))


def test_ml1m_first_user_and_seq_file_agree(data_dir: Path, tmp_path: Path) -> None:
    pairs = load_dataset("ml-1m", str(data_dir), str(tmp_path))
    assert pairs.sequences[0][:3].tolist() == [2758, 862, 1069]
    seq = load(data_dir / "ml-1m" / "ml-1m_seq.txt.gz", tmp_path)
    assert seq.name == "ml-1m_seq"
    assert seq.num_items == pairs.num_items
    assert all(np.array_equal(a, b) for a, b in zip(seq.sequences, pairs.sequences, strict=True))


def test_anime_chunk_loads_by_path(data_dir: Path, tmp_path: Path) -> None:
    data = load(data_dir / "anime" / "rating_part23_of_23.csv", tmp_path)
    stats = dataset_stats(data)
    assert (stats["users"], stats["items"], stats["interactions"]) == (857, 2867, 92225)


def test_sequences_are_read_only(tmp_path: Path) -> None:
    data = load(write(tmp_path / "s.txt", TINY_SEQ), tmp_path / "cache")
    with pytest.raises(ValueError):
        data.sequences[0][0] = 3


# --- formats --------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("file_name", ["tiny.txt", "tiny.txt.gz"])
@pytest.mark.parametrize("layout", ["seq", "pairs"])
def test_seq_and_pairs_files(tmp_path: Path, file_name: str, layout: str) -> None:
    text = TINY_SEQ if layout == "seq" else to_pairs(TINY_SEQ)
    data = load(write(tmp_path / file_name, text), tmp_path / "cache")
    assert as_lists(data) == TINY_SEQS
    assert data.num_items == 9
    assert data.name == "tiny"
    assert data.source == str(tmp_path / file_name)


def test_raw_ratings_dat_by_path(tmp_path: Path) -> None:
    users = (3, 1, 2, 5, 4)
    text = "".join(f"{u}::{m}::3::{1000 - m}\n" for u in users for m in (7, 3, 5, 9, 11))
    text += "6::3::4::1\n6::5::4::1\n"  # user 6 has fewer than 5 ratings
    data = load(write(tmp_path / "ratings.dat", text), tmp_path / "cache")
    assert as_lists(data) == [[5, 4, 3, 2, 1]] * 5  # users 1..5; each by time: 11, 9, 7, 5, 3


def test_amazon_csv_by_path(tmp_path: Path) -> None:
    text = "".join(f"u{u},p{p},5.0,{10 * p}\n" for u in range(5) for p in range(5, 0, -1))
    data = load(write(tmp_path / "ratings_Beauty.csv", text), tmp_path / "cache")
    assert as_lists(data) == [[5, 4, 3, 2, 1]] * 5


# --- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 2\n1 3\n2 4\n1 5\n", r"bad\.txt, line 4: user 1 appears again"),
        ("1 2 3\n2 4 5\n1 6\n", r"bad\.txt, line 3: user 1 appears again"),
        ("1 2 3\n2\n", r"bad\.txt, line 2: expected 'user item item"),
        ("1 2\n1 0\n", r"bad\.txt, line 2: item id 0 < 1"),
        ("1 2 3\n2 4 0\n", r"bad\.txt, line 2: item id 0 < 1"),
        ("1 2\n1 two\n", r"bad\.txt, line 2: field is not a non-negative integer"),
        ("\n\n", r"bad\.txt: file is empty"),
    ],
)
def test_bad_sequence_files(tmp_path: Path, text: str, match: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=match):
        load(write(tmp_path / "bad.txt", text), cache)
    assert not cache.exists() or not list(cache.iterdir())  # nothing cached, no temp file


def test_missing_known_files_say_where_to_get_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("AWR_DATA_MIRROR", raising=False)
    with pytest.raises(DataError) as err:
        load_dataset("ml-1m", str(tmp_path), str(tmp_path / "c"), download=False)
    url = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert f"download {url} and put it at {tmp_path / 'ml-1m' / 'ml-1m.zip'}" in str(err.value)
    with pytest.raises(DataError) as err:
        load_dataset("anime", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'anime' / 'rating.csv'}: ")
    assert "not downloaded" in message and "Kaggle" in message and "CooperUnion" in message
    assert "download its rating.csv and put it at this path" in message


def test_unknown_name_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("ml1m", data_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    for name in ("ml-1m", "beauty", "beauty-5core", "anime", "synthetic"):
        assert name in str(err.value)
    with pytest.raises(DataError, match="awr.data.synthetic"):
        load_dataset("synthetic", data_dir=str(tmp_path))


def test_bad_csv_field_count(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"x\.csv, line 1: a \.csv must have 4"):
        load(write(tmp_path / "x.csv", "a,b\n"), tmp_path / "cache")


def test_resolve_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWR_DATA_DIR", "/from/env")
    assert resolve_data_dir("/given") == Path("/given")
    assert resolve_data_dir(None) == Path("/from/env")
    monkeypatch.delenv("AWR_DATA_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/someone")
    chosen = resolve_data_dir(None)  # the user cache: ~/.cache/awr/data on Linux
    assert chosen == pooch.os_cache("awr") / "data" and str(chosen).startswith("/home/someone/")


def test_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWR_CACHE_DIR", str(tmp_path / "env_cache"))
    load_dataset(str(write(tmp_path / "s.txt", TINY_SEQ)))
    assert len(list((tmp_path / "env_cache").glob("*.npz"))) == 1


# --- cache ----------------------------------------------------------------------------------


def test_cache_is_used_and_keyed_by_content(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "s.txt", TINY_SEQ)
    cache = tmp_path / "cache"
    first = load(path, cache)
    (npz,) = cache.iterdir()
    assert npz.name.startswith(first.checksum)
    with np.load(npz) as z:
        assert z["items"].tolist() == sum(TINY_SEQS, [])
        assert z["offsets"].tolist() == [0, 6, 7, 9, 12, 16]

    def fail(*_args):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(datasets, "parse_source", fail)
    assert as_lists(load(path, cache)) == TINY_SEQS
    monkeypatch.undo()
    write(path, "1 1 2\n")  # new content, new key
    assert as_lists(load(path, cache)) == [[1, 2]]
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "inconsistent"])
def test_corrupt_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    path = write(tmp_path / "s.txt", TINY_SEQ)
    cache = tmp_path / "cache"
    load(path, cache)
    (npz,) = cache.iterdir()
    good = npz.read_bytes()
    if damage == "garbage":
        npz.write_bytes(b"not a zip file")
    elif damage == "truncated":
        npz.write_bytes(good[: len(good) // 2])
    else:
        np.savez(npz, items=np.array([1, 2]), offsets=np.array([0, 5]))
    assert as_lists(load(path, cache)) == TINY_SEQS
    assert npz.read_bytes() == good


def test_failed_cache_write_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "s.txt", TINY_SEQ)
    cache = tmp_path / "cache"

    def crash(*_args, **_kwargs):
        raise RuntimeError("crash while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(RuntimeError, match="crash while writing"):
        load(path, cache)
    assert list(cache.iterdir()) == []

    def disk_full(*_args, **_kwargs):
        raise OSError("no space left")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(UserWarning, match="could not write the data cache"):
        assert as_lists(load(path, cache)) == TINY_SEQS
    assert list(cache.iterdir()) == []


# --- synthetic ------------------------------------------------------------------------------


def test_planted_dataset_follows_the_rule() -> None:
    data = planted_dataset(num_users=30, num_items=12, length=8, seed=3)
    assert data.name == "synthetic" and data.num_items == 12 and len(data.sequences) == 30
    for seq in data.sequences:
        assert len(seq) == 8 and len(set(seq.tolist())) == 8
        assert (seq[1:] == seq[:-1] % 12 + 1).all()
        assert seq.min() >= 1 and seq.max() <= 12
    again = planted_dataset(num_users=30, num_items=12, length=8, seed=3)
    assert as_lists(again) == as_lists(data) and again.checksum == data.checksum
    other = planted_dataset(num_users=30, num_items=12, length=8, seed=4)
    assert as_lists(other) != as_lists(data) and other.checksum != data.checksum
    with pytest.raises(ValueError, match="length < num_items"):
        planted_dataset(num_users=3, num_items=5, length=5)
