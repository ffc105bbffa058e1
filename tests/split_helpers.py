"""One user's samples of the leave-one-out split (awr/data/split.py), which the library only
computes for all users at once (awr/data/batches.py): the split tests read them per user."""

from __future__ import annotations

import numpy as np

from awr.data.datasets import SequenceData
from awr.data.split import MIN_EVAL_LEN, Split, eval_input_lengths, lengths, train_input_lengths


def train_sample(seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training input and targets (same length, possibly empty) of one full sequence."""
    k = int(train_input_lengths(np.array([len(seq)]))[0])
    return seq[:k], seq[1 : k + 1]


def eval_sample(seq: np.ndarray, split: Split) -> tuple[np.ndarray, int]:
    """Evaluation input and target of one full sequence; ValueError if it is too short."""
    if len(seq) < MIN_EVAL_LEN:
        raise ValueError(f"a sequence of length {len(seq)} < {MIN_EVAL_LEN} is not evaluated")
    _, k = eval_input_lengths(np.array([len(seq)]), split)
    return seq[: k[0]], int(seq[k[0]])


def eval_users(data: SequenceData) -> np.ndarray:
    """Indices of the users that are evaluated (at least 3 interactions)."""
    return np.flatnonzero(lengths(data) >= MIN_EVAL_LEN)
