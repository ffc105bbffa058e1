"""Per-user outcomes of a trial: the rank of the validation and the test target of every
evaluated user at the best-validation state, saved as one small `ranks.npz`.

Every metric at any cutoff follows from a rank (awr/eval/metrics.py), so two trials on the same
data can be compared user by user (analysis/paired.py) long after they ran. Users are named by
`user_index`, the 0-based position of the user's line block in the dataset file (for the named
datasets, whose user ids run 1..U in file order, that is the user id minus 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from awr.eval.metrics import metrics_from_ranks
from awr.files import atomic_write

RANKS_FILE = "ranks.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class UserRanks:
    """Aligned (U_eval,) int arrays: user, validation rank, test rank (rank 0 = top)."""

    user_index: np.ndarray
    valid_rank: np.ndarray
    test_rank: np.ndarray

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.user_index, self.valid_rank, self.test_rank)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"user_index, valid_rank and test_rank must be aligned 1-d: {shapes}")

    def metrics(self, split: str) -> dict[str, float]:
        """Mean metrics of `split` ('valid' or 'test'), as evaluate() reports them."""
        import torch

        ranks = {"valid": self.valid_rank, "test": self.test_rank}[split]
        return metrics_from_ranks(torch.from_numpy(ranks.astype(np.int64)))

    def save(self, path: Path) -> Path:
        """Write atomically (a temp file beside `path`, then a rename); int32, compressed."""
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(
                handle,
                version=np.int32(FORMAT_VERSION),
                user_index=self.user_index.astype(np.int32),
                valid_rank=self.valid_rank.astype(np.int32),
                test_rank=self.test_rank.astype(np.int32),
            )
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> UserRanks:
        with np.load(Path(path), allow_pickle=False) as npz:
            return cls(
                user_index=np.asarray(npz["user_index"], dtype=np.int64),
                valid_rank=np.asarray(npz["valid_rank"], dtype=np.int64),
                test_rank=np.asarray(npz["test_rank"], dtype=np.int64),
            )
