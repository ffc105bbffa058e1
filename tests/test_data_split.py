"""Leave-one-out split on a hand-written file (exact arrays) and leakage checks on ML-1M."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import split_helpers

from awr.data import split
from awr.data.datasets import SequenceData, load_dataset

# users of length 6, 1, 2, 3, 4
TINY_SEQ = "10 5 1 7 3 9 2\n11 4\n12 2 8\n13 6 3 1\n14 9 8 7 6\n"


@pytest.fixture
def tiny(tmp_path: Path) -> SequenceData:
    (tmp_path / "tiny.txt").write_text(TINY_SEQ)
    return load_dataset(str(tmp_path / "tiny.txt"), cache_dir=str(tmp_path / "cache"))


def pairs(sample: tuple[np.ndarray, np.ndarray]) -> tuple[list[int], list[int]]:
    return sample[0].tolist(), sample[1].tolist()


def test_training_samples(tiny: SequenceData) -> None:
    got = [pairs(split_helpers.train_sample(s)) for s in tiny.sequences]
    assert got == [
        ([5, 1, 7], [1, 7, 3]),  # n=6: seq[:-3], seq[1:-2]
        ([], []),  # n=1: nothing
        ([2], [8]),  # n=2: seq[:-1], seq[1:] (not evaluated)
        ([], []),  # n=3: seq[:-3] is empty
        ([9], [8]),  # n=4
    ]
    assert split.train_input_lengths(split.lengths(tiny)).tolist() == [3, 0, 1, 0, 1]


def test_eval_samples(tiny: SequenceData) -> None:
    assert split_helpers.eval_users(tiny).tolist() == [0, 3, 4]
    valid = [split_helpers.eval_sample(tiny.sequences[u], "valid") for u in (0, 3, 4)]
    test = [split_helpers.eval_sample(tiny.sequences[u], "test") for u in (0, 3, 4)]
    assert [(x.tolist(), t) for x, t in valid] == [([5, 1, 7, 3], 9), ([6], 3), ([9, 8], 7)]
    assert [(x.tolist(), t) for x, t in test] == [([5, 1, 7, 3, 9], 2), ([6, 3], 1), ([9, 8, 7], 6)]
    users, k = split.eval_input_lengths(split.lengths(tiny), "test")
    assert (users.tolist(), k.tolist()) == ([0, 3, 4], [5, 2, 3])
    with pytest.raises(ValueError, match="not evaluated"):
        split_helpers.eval_sample(tiny.sequences[2], "valid")
    with pytest.raises(ValueError, match="split must be"):
        split.eval_input_lengths(split.lengths(tiny), "train")  # type: ignore[arg-type]


def test_no_leakage_on_ml1m(data_dir: Path, tmp_path: Path) -> None:
    data = load_dataset("ml-1m", str(data_dir), str(tmp_path))
    lengths = split.lengths(data)
    k = split.train_input_lengths(lengths)
    assert (k == lengths - 3).all()  # every ML-1M user has >= 18 items
    for seq in data.sequences[::97]:
        inputs, targets = split_helpers.train_sample(seq)
        valid_in, valid_t = split_helpers.eval_sample(seq, "valid")
        test_in, test_t = split_helpers.eval_sample(seq, "test")
        seen_in_training = set(inputs.tolist()) | set(targets.tolist())
        assert valid_t not in seen_in_training and test_t not in seen_in_training
        assert len(set(seq.tolist())) == len(seq)  # no repeats, so the sets below are disjoint
        assert test_t not in set(valid_in.tolist()) | {valid_t}
        assert np.array_equal(valid_in, seq[:-2]) and np.array_equal(test_in[:-1], valid_in)
        assert test_in[-1] == valid_t
