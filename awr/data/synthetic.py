"""A synthetic dataset with a planted next-item rule, for checking that models can learn.

Each user starts at a random item s and then follows the cycle s, s+1, ..., num_items, 1, 2, ...
(the next item is `item % num_items + 1`), so the next item is always predictable from the last
one and no item repeats within a sequence (hence length < num_items, which also leaves every user
an item to sample as a negative).
"""

from __future__ import annotations

import hashlib

import numpy as np

from awr.data.datasets import SequenceData


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
