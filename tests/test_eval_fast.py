"""The fast full-ranking path (item factors once per pass, one reused score buffer, ranks
counted in item chunks) against the reference path: `score_all` per batch, ranked whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awr.config import TrialConfig
from awr.data.batches import build_eval_tensors
from awr.data.synthetic import random_sequences
from awr.eval.evaluate import length_order, masked_ranks, user_ranks
from awr.eval.metrics import target_ranks
from awr.models.registry import build_model
from awr.models.scoring import factor_scores, has_factors

NUM_ITEMS = 50


def reference_ranks(model: torch.nn.Module, tensors, batch_size: int) -> torch.Tensor:
    """user_ranks as it was: score_all per batch, history masked, ranked in one piece."""
    model.eval()
    ranks = torch.empty_like(tensors.targets)
    with torch.inference_mode():
        for rows in length_order(tensors).split(batch_size):
            scores = model.score_all(tensors.inputs[rows]).float()
            ranks[rows] = masked_ranks(scores, tensors, rows)
    return ranks


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "none"), ("stosa", "stochastic")])
def test_factor_path_gives_the_reference_ranks(backbone: str, mechanism: str, batch_size: int):
    lengths = np.random.default_rng(2).integers(1, 30, size=60)
    data = random_sequences("fast", lengths, NUM_ITEMS, seed=3, source="test")
    config = TrialConfig(
        backbone=backbone, mechanism=mechanism, max_len=12, hidden_size=16, num_heads=2
    )
    torch.manual_seed(0)
    model = build_model(config, NUM_ITEMS)
    assert has_factors(model)
    for split in ("valid", "test"):
        tensors = build_eval_tensors(data, config.max_len, split)
        fast = user_ranks(model, tensors, batch_size)
        assert fast.tolist() == reference_ranks(model, tensors, batch_size).tolist()
        assert 0 < int(fast.min()) or int(fast.max()) > 0  # not all-zero by accident


def test_factor_scores_are_the_product_with_its_ceiling():
    generator = torch.Generator().manual_seed(0)
    queries, items = torch.randn(3, 5, generator=generator), torch.randn(7, 5, generator=generator)
    torch.testing.assert_close(factor_scores(queries, items, None), queries @ items.T)
    capped = factor_scores(queries, items, 0.25)
    torch.testing.assert_close(capped, (queries @ items.T).clamp_max(0.25))
    out = torch.empty(7, 3)
    assert factor_scores(queries, items, None, out=out).data_ptr() == out.data_ptr()


def test_chunked_ranks_equal_ranks_counted_in_one_piece():
    """Ties, -inf masks and NaN scores, with chunks that cut through every row."""
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (9, 23), generator=generator).float()
    scores[scores == 4] = float("-inf")
    scores[0, 3] = float("nan")
    scores[1, 0] = float("nan")
    targets = torch.randint(0, 23, (9,), generator=generator)
    targets[1] = 0  # a NaN target ranks last
    target_scores = scores.gather(1, targets[:, None])
    expected = (scores >= target_scores).sum(1) - 1
    expected[1] = 22
    for chunk in (1, 4, 23, 4096):
        assert target_ranks(scores, targets, chunk=chunk).tolist() == expected.tolist()


def test_a_ceiling_on_the_target_alone_ranks_as_clamping_every_score():
    """STOSA's scores are min(product, -MIN_COV): counting raw products against the clamped
    target gives the ranks of the clamped scores, ties at the ceiling included."""
    lengths = np.random.default_rng(4).integers(3, 9, size=30)
    data = random_sequences("ceiling", lengths, NUM_ITEMS, seed=5, source="test")
    tensors = build_eval_tensors(data, 6, "test")
    rows = torch.arange(tensors.targets.shape[0])
    generator = torch.Generator().manual_seed(6)
    raw = torch.randint(-6, 6, (rows.numel(), NUM_ITEMS + 1), generator=generator).float()
    raw[0, 5] = float("nan")
    ceiling = 1.5  # about 40% of the scores lie above it
    clamped = masked_ranks(raw.clamp_max(ceiling), tensors, rows)
    assert masked_ranks(raw.clone(), tensors, rows, ceiling).tolist() == clamped.tolist()
    assert masked_ranks(raw.clone(), tensors, rows).tolist() != clamped.tolist()
