"""evaluate() against a per-user loop written from SPEC 2: every item scored, the user's full
(untruncated) input history and the padding id excluded, ties against the target; batches of
length-sorted rows give the same means as the plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from awr.data.batches import build_eval_tensors
from awr.data.synthetic import random_sequences
from awr.eval.evaluate import evaluate, length_order, user_ranks
from awr.eval.metrics import METRIC_NAMES

NUM_ITEMS = 12
MAX_LEN = 4  # shorter than most histories, so masking must use the untruncated ones


class LastItemScorer(nn.Module):
    """Scores depend on the last input item only; small integers make ties frequent."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.table = torch.randint(0, 4, (NUM_ITEMS + 1, NUM_ITEMS + 1), generator=generator)

    def score_all(self, input_ids: Tensor) -> Tensor:
        return self.table[input_ids[:, -1]].float()


def oracle_ranks(model: LastItemScorer, sequences: list[np.ndarray], split: str) -> list[int]:
    """The target's rank of every evaluated user (in file order), one user at a time."""
    ranks = []
    for seq in sequences:
        if len(seq) < 3:
            continue
        cut = len(seq) - (2 if split == "valid" else 1)
        history, target = seq[:cut], int(seq[cut])
        scores = model.table[int(history[-1])].tolist()
        excluded = set(history.tolist()) - {target}
        ranks.append(
            sum(
                1
                for item in range(1, NUM_ITEMS + 1)
                if item != target and item not in excluded and scores[item] >= scores[target]
            )
        )
    return ranks


def oracle(model: LastItemScorer, sequences: list[np.ndarray], split: str) -> dict[str, float]:
    """One user at a time in plain Python."""
    per_user: list[dict[str, float]] = []
    for seq in sequences:
        if len(seq) < 3:
            continue
        cut = len(seq) - (2 if split == "valid" else 1)
        history, target = seq[:cut], int(seq[cut])
        scores = model.table[int(history[-1])].tolist()
        excluded = set(history.tolist()) - {target}
        rank = sum(
            1
            for item in range(1, NUM_ITEMS + 1)
            if item != target and item not in excluded and scores[item] >= scores[target]
        )
        values = {f"recall_{k}": float(rank < k) for k in (1, 5, 10, 20)}
        values.update({f"ndcg_{k}": (rank < k) / math.log2(rank + 2) for k in range(1, 21)})
        values["mrr"] = 1.0 / (rank + 1)
        per_user.append(values)
    return {name: float(np.mean([v[name] for v in per_user])) for name in METRIC_NAMES}


@pytest.mark.parametrize("split", ["valid", "test"])
@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_evaluate_matches_a_per_user_loop(split: str, batch_size: int) -> None:
    lengths = np.random.default_rng(5).integers(1, 11, size=40)  # some users too short to rank
    data = random_sequences("loop", lengths, NUM_ITEMS, seed=7, source="test")
    model = LastItemScorer()
    tensors = build_eval_tensors(data, MAX_LEN, split)
    got = evaluate(model, tensors, batch_size)
    expected = oracle(model, data.sequences, split)
    assert got.keys() == expected.keys()
    for name in METRIC_NAMES:
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name
    assert 0.0 < expected["recall_5"] < 1.0  # the case is neither trivial nor hopeless


@pytest.mark.parametrize("split", ["valid", "test"])
def test_user_ranks_are_per_user_in_row_order(split: str) -> None:
    lengths = np.random.default_rng(5).integers(1, 11, size=40)
    data = random_sequences("loop", lengths, NUM_ITEMS, seed=7, source="test")
    model = LastItemScorer()
    tensors = build_eval_tensors(data, MAX_LEN, split)
    got = user_ranks(model, tensors, batch_size=3)  # batches in length order, not row order
    assert got.tolist() == oracle_ranks(model, data.sequences, split)
    assert tensors.user_index.tolist() == np.flatnonzero(lengths >= 3).tolist()


def test_length_order_sorts_rows_by_input_length_stably() -> None:
    data = random_sequences("order", np.array([6, 3, 9, 3, 4]), NUM_ITEMS, seed=1, source="t")
    tensors = build_eval_tensors(data, 5, "test")  # input lengths 5, 2, 5 (cut), 2, 3
    assert length_order(tensors).tolist() == [1, 3, 4, 0, 2]
