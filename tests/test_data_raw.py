"""Raw-source preprocessing (ML-1M ratings.dat, Amazon CSV, Kaggle anime) and the int parser."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from awr.data import raw
from awr.data.errors import DataError


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def as_lists(seqs: raw.RawSequences) -> list[list[int]]:
    return [s.tolist() for s in seqs.sequences]


# --- the integer parser ---------------------------------------------------------------------


def test_parse_int_lines_counts_blank_lines_and_crlf() -> None:
    lines = raw.parse_int_lines(b"1 2 3\r\n\n  \n4\t5\r\n6 7", "f.txt")
    assert lines.values.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert lines.counts.tolist() == [3, 2, 2]
    assert lines.line_no.tolist() == [1, 4, 5]


def test_parse_int_lines_with_separator_and_negatives() -> None:
    lines = raw.parse_int_lines(b"1,-1,3\n-20,5,0\n", "r.csv", sep=b",", allow_negative=True)
    assert lines.values.tolist() == [1, -1, 3, -20, 5, 0]
    assert raw.int_table(lines, 3, "r.csv", "a,b,c").tolist() == [[1, -1, 3], [-20, 5, 0]]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"1 2\n1 x\n", 2),  # non-integer id
        (b"1 2\n\n3 2.5\n", 3),  # float id, after a blank line
        (b"1 2\n4 -3\n", 2),  # negative id where none is allowed
        (b"1 2\n3 4\n5 1234567890123456789\n", 3),  # would overflow int64
    ],
)
def test_parse_int_lines_bad_field_names_file_and_line(text: bytes, line: int) -> None:
    with pytest.raises(DataError, match=rf"seqs\.txt, line {line}: "):
        raw.parse_int_lines(text, "seqs.txt")


def test_parse_int_lines_misplaced_minus() -> None:
    with pytest.raises(DataError, match=r"a\.csv, line 2: field is not an integer"):
        raw.parse_int_lines(b"1,2,3\n4,5-,6\n", "a.csv", sep=b",", allow_negative=True)
    with pytest.raises(DataError, match=r"a\.csv, line 1: unexpected space"):
        raw.parse_int_lines(b"1, 2,3\n", "a.csv", sep=b",")


def test_int_table_wrong_field_count_names_line() -> None:
    lines = raw.parse_int_lines(b"1::2::3::4\n1::2::3\n", "ratings.dat", sep=b"::")
    with pytest.raises(DataError, match=r"ratings\.dat, line 2: expected 4 fields"):
        raw.int_table(lines, 4, "ratings.dat", "UserID::MovieID::Rating::Timestamp")


def test_read_bytes_empty_missing_and_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.dat: file is empty"):
        raw.read_bytes(write(tmp_path / "empty.dat", ""))
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b"\n \n"))
    with pytest.raises(DataError, match=r"empty\.gz: file is empty"):
        raw.read_bytes(tmp_path / "empty.gz")
    with pytest.raises(DataError, match=r"nope\.dat: file not found"):
        raw.read_bytes(tmp_path / "nope.dat")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"1 2\n")[:-6])
    with pytest.raises(DataError, match=r"bad\.gz: cannot read"):
        raw.read_bytes(tmp_path / "bad.gz")
    (tmp_path / "ok.gz").write_bytes(gzip.compress(b"1 2\n"))
    assert raw.read_bytes(tmp_path / "ok.gz") == b"1 2\n"


# --- ML-1M ratings.dat ----------------------------------------------------------------------

TINY_RATINGS = """\
1::20::3::100
1::10::5::100
1::30::4::50
2::10::4::10
2::20::2::20
3::30::1::5
3::40::5::6
"""


def test_ml1m_filters_movies_then_users_and_sorts_ties_by_movie(tmp_path: Path) -> None:
    seqs = raw.preprocess_ml1m(write(tmp_path / "ratings.dat", TINY_RATINGS), 2, 2)
    # movie 40 (1 rating) goes first, which leaves user 3 with 1 rating: dropped too
    assert seqs.users.tolist() == [1, 2]
    assert seqs.item_ids.tolist() == [10, 20, 30]
    # user 1: (50, 30), then the tie at 100 in MovieID order: 10, 20
    assert as_lists(seqs) == [[3, 1, 2], [1, 2]]


def test_ml1m_kept_movies_fix_the_numbering(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.dat", TINY_RATINGS)
    seqs = raw.preprocess_ml1m(path, min_user=1, kept_movies=[5, 10, 30, 40])
    assert seqs.item_ids.tolist() == [5, 10, 30, 40]
    assert seqs.num_items == 4
    assert as_lists(seqs) == [[3, 2], [2], [3, 4]]


def test_ml1m_bad_lines(tmp_path: Path) -> None:
    bad = write(tmp_path / "r1.dat", "1::10::5::100\n1::11::5\n")
    with pytest.raises(DataError, match=r"r1\.dat, line 2: expected 4 fields"):
        raw.preprocess_ml1m(bad)
    bad = write(tmp_path / "r2.dat", "1::10::5::100\n1::x1::5::7\n")
    with pytest.raises(DataError, match=r"r2\.dat, line 2: field is not a non-negative integer"):
        raw.preprocess_ml1m(bad)
    bad = write(tmp_path / "r3.dat", "1::10::5::100\n1:11::5::7\n")
    with pytest.raises(DataError, match=r"r3\.dat, line 2"):
        raw.preprocess_ml1m(bad)
    with pytest.raises(DataError, match=r"r4\.dat: no interaction is left"):
        raw.preprocess_ml1m(write(tmp_path / "r4.dat", "1::10::5::100\n"))


def test_ml1m_raw_users_1_to_2999_match_the_shipped_file(data_dir: Path) -> None:
    item_map = pd.read_csv(data_dir / "ml-1m" / "item_map.tsv", sep="\t")
    seqs = raw.preprocess_ml1m(
        data_dir / "ml-1m" / "raw" / "ratings_users1-2999.dat.gz", kept_movies=item_map.MovieID
    )
    assert seqs.num_items == 3416
    # dense id k is MovieID item_map[k]: the item ids coincide with the shipped file's
    assert np.array_equal(seqs.item_ids, item_map.MovieID.to_numpy())
    assert np.array_equal(np.arange(1, 3417), item_map.item_id.to_numpy())
    pairs = pd.read_csv(data_dir / "ml-1m" / "ml-1m.txt.gz", sep=" ", header=None).to_numpy()
    pairs = pairs[pairs[:, 0] <= 2999]
    assert seqs.users.tolist() == list(range(1, 3000))
    lengths = [len(s) for s in seqs.sequences]
    assert sum(lengths) == len(pairs)
    expected = np.split(pairs[:, 1], np.cumsum(lengths)[:-1])
    assert all(np.array_equal(a, b) for a, b in zip(seqs.sequences, expected, strict=True))
    assert np.array_equal(np.unique(pairs[:, 0]), np.arange(1, 3000))


# --- Amazon ratings CSV ---------------------------------------------------------------------

TINY_AMAZON = """\
uA,i1,5.0,30
uB,i2,4.0,10
uA,i2,3.0,20
uC,i3,1.0,5
uC,i1,2.0,5
uB,i1,5.0,10
uD,i1,5.0,1
"""


def test_amazon_one_pass_first_appearance_stable_time_sort(tmp_path: Path) -> None:
    seqs = raw.preprocess_amazon(write(tmp_path / "ratings.csv", TINY_AMAZON), 2, 2)
    # uD (1 rating) and i3 (1 rating) go; uC keeps 1 rating (one pass, not iterated)
    assert seqs.users.tolist() == ["uA", "uB", "uC"]
    assert seqs.item_ids.tolist() == ["i1", "i2"]
    # uA by time: i2 (20), i1 (30); uB tie at 10 keeps file order: i2, i1
    assert as_lists(seqs) == [[2, 1], [2, 1], [1]]


def test_amazon_bad_lines(tmp_path: Path) -> None:
    bad = write(tmp_path / "a1.csv", "uA,i1,5.0,30\nuA,i2,5.0\n")
    with pytest.raises(DataError, match=r"a1\.csv, line 2: expected 4 fields"):
        raw.preprocess_amazon(bad)
    bad = write(tmp_path / "a2.csv", "uA,i1,5.0,30\n\nuA,i2,5.0,yesterday\n")
    with pytest.raises(DataError, match=r"a2\.csv, line 3: .*not a number"):
        raw.preprocess_amazon(bad)
    with pytest.raises(DataError, match=r"a3\.csv: file is empty"):
        raw.preprocess_amazon(write(tmp_path / "a3.csv", ""))


# --- Kaggle anime -----------------------------------------------------------------------------


def test_anime_header_crlf_unrated_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "rating.csv"
    path.write_bytes(b"user_id,anime_id,rating\r\n1,5,-1\r\n1,3,8\r\n2,5,7\r\n")
    seqs = raw.preprocess_anime(path, min_user=1, min_item=1)
    assert seqs.users.tolist() == [1, 2]
    assert seqs.item_ids.tolist() == [3, 5]
    assert as_lists(seqs) == [[2, 1], [2]]  # file order, no timestamps
    rated = raw.preprocess_anime(path, min_user=1, min_item=1, keep_unrated=False)
    assert as_lists(rated) == [[1], [2]]
    meta = write(tmp_path / "anime.csv", 'anime_id,name,genre\n5,"A, B",Drama\n')
    only5 = raw.preprocess_anime(path, min_user=1, min_item=1, metadata=meta)
    assert only5.item_ids.tolist() == [5]
    assert as_lists(only5) == [[1], [1]]


def test_anime_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "r1.csv").write_bytes(b"1,5,-1\r\n1,3\r\n")
    with pytest.raises(DataError, match=r"r1\.csv, line 2: expected 3 fields"):
        raw.preprocess_anime(tmp_path / "r1.csv")
    (tmp_path / "r2.csv").write_bytes(b"user_id,anime_id,rating\r\n1,5,-1\r\n1,3,-7\r\n")
    with pytest.raises(DataError, match=r"r2\.csv, line 3: ids must be >= 0"):
        raw.preprocess_anime(tmp_path / "r2.csv")
    (tmp_path / "r3.csv").write_bytes(b"1,5,-1\r\nuser,3,5\r\n")
    with pytest.raises(DataError, match=r"r3\.csv, line 2: field is not an integer"):
        raw.preprocess_anime(tmp_path / "r3.csv")


@pytest.mark.parametrize("keep_unrated", [True, False])
def test_anime_real_chunk_matches_pandas(data_dir: Path, keep_unrated: bool) -> None:
    path = data_dir / "anime" / "rating_part23_of_23.csv"
    df = pd.read_csv(path, header=None, names=["user", "anime", "rating"])
    assert (len(df), df.user.nunique(), int((df.rating == -1).sum())) == (97470, 956, 19319)
    if not keep_unrated:
        df = df[df.rating != -1]
    user_n = df.user.map(df.user.value_counts())
    anime_n = df.anime.map(df.anime.value_counts())
    kept = df[(user_n >= 5) & (anime_n >= 5)]
    item_ids = np.sort(kept.anime.unique())
    seqs = raw.preprocess_anime(path, keep_unrated=keep_unrated)
    assert seqs.users.tolist() == kept.user.unique().tolist()
    assert seqs.item_ids.tolist() == item_ids.tolist()
    assert sum(len(s) for s in seqs.sequences) == len(kept)
    dense = np.searchsorted(item_ids, kept.anime.to_numpy()) + 1
    expected = [dense[kept.user.to_numpy() == u] for u in seqs.users]
    assert all(np.array_equal(a, b) for a, b in zip(seqs.sequences, expected, strict=True))
    meta = raw.read_anime_ids(data_dir / "anime" / "anime.csv")
    assert len(meta) == 12294
