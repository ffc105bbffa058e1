import math

import pytest
import torch

from awr.eval.metrics import METRIC_NAMES, metrics_from_ranks, target_ranks


def test_ranks_count_ties_against_the_target():
    scores = torch.tensor(
        [
            [0.0, 0.9, 0.5, 0.5, 0.1],  # target 2 ties with item 3, below item 1 -> rank 2
            [0.0, 0.1, 0.2, 0.3, 0.4],  # target 4 is the best -> rank 0
            [0.4, 0.4, 0.4, 0.4, 0.4],  # all equal: every other column ties -> rank 4
        ]
    )
    ranks = target_ranks(scores, torch.tensor([2, 4, 1]))
    assert ranks.tolist() == [2, 0, 4]


def test_masked_items_do_not_count():
    scores = torch.tensor([[float("-inf"), float("-inf"), 0.3, 0.1, float("-inf")]])
    assert target_ranks(scores, torch.tensor([3])).tolist() == [1]


def test_nan_target_ranks_last():
    scores = torch.tensor([[0.0, float("nan"), 0.2, 0.1]])
    assert target_ranks(scores, torch.tensor([1])).tolist() == [3]


def test_metrics_hand_computed():
    ranks = torch.tensor([0, 2, 7, 30])
    m = metrics_from_ranks(ranks)
    assert set(m) == set(METRIC_NAMES)
    assert m["recall_1"] == pytest.approx(1 / 4)
    assert m["recall_5"] == pytest.approx(2 / 4)
    assert m["recall_10"] == pytest.approx(3 / 4)
    assert m["recall_20"] == pytest.approx(3 / 4)
    assert m["ndcg_1"] == pytest.approx(1 / 4)
    assert m["ndcg_5"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert m["ndcg_10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(9)) / 4)
    assert m["ndcg_3"] == pytest.approx((1 + 0.5) / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 8 + 1 / 31) / 4)


def test_constant_scores_get_near_zero_recall():
    num_items = 1000
    scores = torch.zeros(64, num_items + 1)
    targets = torch.randint(1, num_items + 1, (64,), generator=torch.Generator().manual_seed(0))
    m = metrics_from_ranks(target_ranks(scores, targets))
    assert m["recall_20"] == 0.0
    assert m["ndcg_20"] == 0.0
    assert m["mrr"] == pytest.approx(1 / (num_items + 1))
