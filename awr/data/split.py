"""Leave-one-out split (docs/protocol.md), as pure functions of the sequences.

Every input of the split is a prefix of the user's full sequence `seq` (length n):
  * training (STOSA convention): input `seq[:k]`, targets `seq[1:k+1]` position by position, with
    k = n - 3 for users with n >= 3 (input `seq[:-3]`, targets `seq[1:-2]`) and k = n - 1 for
    shorter users (input `seq[:-1]`, targets `seq[1:]`); k = 0 means no training sample.
  * validation: input `seq[:n-2]`, target `seq[n-2]`; test: input `seq[:n-1]`, target `seq[n-1]`;
    only users with n >= 3 are evaluated.
So the validation and test targets never appear among the training targets or inputs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from awr.data.datasets import SequenceData

MIN_EVAL_LEN = 3
Split = Literal["valid", "test"]


def lengths(data: SequenceData) -> np.ndarray:
    """Full sequence length of every user (int64)."""
    return np.fromiter((len(s) for s in data.sequences), dtype=np.int64, count=len(data.sequences))


def train_input_lengths(seq_lengths: np.ndarray) -> np.ndarray:
    """Training input length k of every user (0 where the user has no training sample)."""
    seq_lengths = np.asarray(seq_lengths, dtype=np.int64)
    k = np.where(seq_lengths >= MIN_EVAL_LEN, seq_lengths - 3, seq_lengths - 1)
    return np.maximum(k, 0)


def eval_input_lengths(seq_lengths: np.ndarray, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated users (indices) and their input lengths; the target is at that position."""
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    seq_lengths = np.asarray(seq_lengths, dtype=np.int64)
    users = np.flatnonzero(seq_lengths >= MIN_EVAL_LEN)
    return users, seq_lengths[users] - (2 if split == "valid" else 1)
