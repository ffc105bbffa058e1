"""Synthetic datasets: a planted next-item rule, and seeded random items in a real shape.

`planted_dataset` (TrialConfig dataset `synthetic`) checks that models can learn: each user
starts at a random item s and then follows the cycle s, s+1, ..., num_items, 1, 2, ... (the next
item is `item % num_items + 1`), so the next item is always predictable from the last one and no
item repeats within a sequence (hence length < num_items, which also leaves every user an item
to sample as a negative).

`shaped_dataset` (the benchmark's `synthetic:<name>`, label SYNTHETIC_PREFIX + name) times
models without the data: seeded uniform random items 1..num_items in sequences with the shape of
a real dataset (same user count, item count and sequence-length distribution). The shapes of
ml-1m and beauty are built in (SHAPES: length quantiles of the real files, so no data is
needed); `tiny` is a small shape for tests; any other name loads the real dataset and reuses
its exact sequence lengths, permuted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from awr.data.datasets import SequenceData, load_dataset

SYNTHETIC_PREFIX = "synthetic:"  # the label of a shaped dataset: synthetic:<name>

# Percentiles at which the built-in shapes give the sequence length (linear in between).
QUANTILE_POINTS = (0, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.9, 100)


@dataclass(frozen=True)
class Shape:
    """A dataset's size: users, items and its sequence-length quantiles at QUANTILE_POINTS."""

    users: int
    items: int
    length_quantiles: tuple[float, ...]


# From the real files in the data dir (ML-1M, SASRec's Beauty).
SHAPES = {
    "ml-1m": Shape(
        6040,
        3416,
        (18, 20, 21, 23, 27, 37, 51, 70, 96, 126, 173, 253, 400, 556, 783, 906, 1341, 2277),
    ),
    "beauty": Shape(52204, 57289, (1, 2, 2, 3, 4, 4, 5, 5, 6, 6, 7, 9, 13, 17, 27, 37, 93, 293)),
    "tiny": Shape(1000, 300, (2, 3, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 22, 25, 28, 30, 32, 35)),
}


def planted_dataset(
    num_users: int = 200, num_items: int = 50, length: int = 20, seed: int = 0
) -> SequenceData:
    """`num_users` sequences of `length` items following the planted rule; seeded start items."""
    if num_users < 1 or length < 1 or num_items < 2 or length >= num_items:
        raise ValueError(
            f"need num_users >= 1, num_items >= 2 and 1 <= length < num_items; got "
            f"num_users={num_users}, num_items={num_items}, length={length}"
        )
    start = np.random.default_rng(seed).integers(0, num_items, size=num_users)
    items = (start[:, None] + np.arange(length)[None, :]) % num_items + 1
    items = items.astype(np.int64)
    items.flags.writeable = False
    params = f"planted:num_users={num_users},num_items={num_items},length={length},seed={seed}"
    return SequenceData(
        name="synthetic",
        sequences=list(items),
        num_items=num_items,
        checksum=hashlib.sha256(params.encode()).hexdigest(),
        source=params,
    )


def sample_lengths(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """`shape.users` lengths drawn by inverse-CDF interpolation of the shape's quantiles,
    clipped to 1..items-1 (so every user keeps an item to sample as a negative)."""
    u = rng.uniform(0.0, 100.0, size=shape.users)
    lengths = np.rint(np.interp(u, QUANTILE_POINTS, shape.length_quantiles)).astype(np.int64)
    return np.clip(lengths, 1, shape.items - 1)


def random_sequences(
    label: str, lengths: np.ndarray, num_items: int, seed: int, source: str
) -> SequenceData:
    """Uniform random items 1..num_items (seeded) in sequences of the given lengths."""
    rng = np.random.default_rng(seed)
    items = rng.integers(1, num_items + 1, size=int(lengths.sum()), dtype=np.int64)
    items.flags.writeable = False
    sequences = np.split(items, np.cumsum(lengths)[:-1])
    return SequenceData(label, sequences, num_items, f"{source}:seed={seed}", source)


def shaped_dataset(name: str, seed: int, data_dir: str | None) -> SequenceData:
    """Random items in the shape `name`: a built-in one (SHAPES), else the exact lengths of the
    real dataset `name` (loaded from `data_dir`), permuted; labelled `synthetic:<name>`."""
    rng = np.random.default_rng(seed)
    if name in SHAPES:
        shape = SHAPES[name]
        lengths, num_items = sample_lengths(shape, rng), shape.items
    else:
        real = load_dataset(name, data_dir)
        lengths = rng.permutation([len(s) for s in real.sequences]).astype(np.int64)
        num_items = real.num_items
    return random_sequences(SYNTHETIC_PREFIX + name, lengths, num_items, seed + 1, name)
