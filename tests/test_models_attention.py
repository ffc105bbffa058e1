"""Attention score functions and masks (awr/models/attention.py) against brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from awr.models.attention import (
    attention_mask,
    masked_softmax,
    wasserstein_distance,
    wasserstein_distance_matrix,
    wasserstein_scores,
)


def w2_pair(mean_a, cov_a, mean_b, cov_b) -> float:
    """Squared 2-Wasserstein distance of two diagonal Gaussians, one coordinate at a time."""
    total = 0.0
    for k in range(len(mean_a)):
        total += (float(mean_a[k]) - float(mean_b[k])) ** 2
        total += (math.sqrt(float(cov_a[k])) - math.sqrt(float(cov_b[k]))) ** 2
    return total


def random_gaussians(generator, shape):
    mean = torch.randn(shape, generator=generator, dtype=torch.float64) * 1.5
    cov = torch.rand(shape, generator=generator, dtype=torch.float64) * 3.0 + 0.05
    return mean, cov


@pytest.mark.parametrize(
    ("lead", "m", "n", "d"),
    [((), 4, 5, 3), ((2,), 3, 3, 4), ((2, 3), 5, 4, 2), ((1, 2), 1, 6, 8)],
)
def test_wasserstein_distance_matrix_matches_double_loop(lead, m, n, d):
    generator = torch.Generator().manual_seed(len(lead) * 100 + m * 10 + n)
    mean_a, cov_a = random_gaussians(generator, (*lead, m, d))
    mean_b, cov_b = random_gaussians(generator, (*lead, n, d))
    got = wasserstein_distance_matrix(mean_a, cov_a, mean_b, cov_b)
    assert got.shape == (*lead, m, n)

    expected = torch.empty(*lead, m, n, dtype=torch.float64)
    flat_a = mean_a.reshape(-1, m, d), cov_a.reshape(-1, m, d)
    flat_b = mean_b.reshape(-1, n, d), cov_b.reshape(-1, n, d)
    flat_expected = expected.view(-1, m, n)
    for g in range(flat_expected.shape[0]):
        for i in range(m):
            for j in range(n):
                flat_expected[g, i, j] = w2_pair(
                    flat_a[0][g, i], flat_a[1][g, i], flat_b[0][g, j], flat_b[1][g, j]
                )
    assert_close(got, expected, rtol=1e-10, atol=1e-10)
    # STOSA's score is the negated distance over sqrt(d).
    assert_close(
        wasserstein_scores(mean_a, cov_a, mean_b, cov_b),
        -expected / math.sqrt(d),
        rtol=1e-10,
        atol=1e-10,
    )


def test_wasserstein_distance_matrix_self_distance_is_tiny_and_positive():
    generator = torch.Generator().manual_seed(3)
    mean, cov = random_gaussians(generator, (2, 5, 4))
    got = wasserstein_distance_matrix(mean, cov, mean, cov)
    diagonal = got.diagonal(dim1=-2, dim2=-1)
    assert (got > 0).all()  # clamped at a tiny positive value
    assert diagonal.abs().max().item() < 1e-9
    assert_close(got, got.transpose(-1, -2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(7, 3), (2, 4, 5), (2, 2, 3, 6)])
def test_wasserstein_distance_elementwise_matches_loop(shape):
    generator = torch.Generator().manual_seed(sum(shape))
    mean_a, cov_a = random_gaussians(generator, shape)
    mean_b, cov_b = random_gaussians(generator, shape)
    got = wasserstein_distance(mean_a, cov_a, mean_b, cov_b)
    assert got.shape == shape[:-1]
    d = shape[-1]
    flat = [t.reshape(-1, d) for t in (mean_a, cov_a, mean_b, cov_b)]
    expected = torch.tensor(
        [w2_pair(flat[0][r], flat[1][r], flat[2][r], flat[3][r]) for r in range(flat[0].shape[0])],
        dtype=torch.float64,
    ).reshape(shape[:-1])
    assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_wasserstein_distance_known_value():
    # means differ by (3, 4): 25; sqrt covs 1 vs 2 and 3 vs 1: 1 + 4 = 5.
    got = wasserstein_distance(
        torch.tensor([0.0, 0.0]),
        torch.tensor([1.0, 9.0]),
        torch.tensor([3.0, 4.0]),
        torch.tensor([4.0, 1.0]),
    )
    assert got.item() == pytest.approx(30.0)
    got_matrix = wasserstein_distance_matrix(
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[1.0, 9.0]]),
        torch.tensor([[3.0, 4.0]]),
        torch.tensor([[4.0, 1.0]]),
    )
    assert got_matrix.item() == pytest.approx(30.0)


def test_attention_mask_hand_checked():
    ids = torch.tensor([[0, 0, 3, 5], [1, 2, 3, 4], [0, 7, 0, 2]])
    got = attention_mask(ids)
    assert got.shape == (3, 1, 4, 4)
    assert got.dtype == torch.bool
    expected = torch.tensor(
        [
            [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]],
            [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]],
            # a zero in the middle is a padding key too
            [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 1]],
        ],
        dtype=torch.bool,
    )[:, None]
    assert torch.equal(got, expected)


def test_masked_softmax_rows_sum_to_one_over_allowed_keys():
    generator = torch.Generator().manual_seed(11)
    ids = torch.tensor([[0, 0, 4, 2, 9], [3, 1, 4, 1, 5]])
    mask = attention_mask(ids)  # (2, 1, 5, 5)
    scores = torch.randn(2, 3, 5, 5, generator=generator) * 4
    weights = masked_softmax(scores, mask)
    full = mask.expand_as(weights)
    valid_rows = full.any(-1)  # (2, 3, 5)
    forbidden_in_valid_rows = ~full & valid_rows[..., None]
    assert forbidden_in_valid_rows.sum().item() == 3 * (3 * 5 - 6) + 3 * (5 * 5 - 15)
    assert (weights[forbidden_in_valid_rows] == 0).all()
    sums = weights.sum(-1)  # (2, 3, 5)
    assert valid_rows.sum().item() == 3 * 3 + 3 * 5
    assert_close(sums[valid_rows], torch.ones(int(valid_rows.sum())))
    # Each valid row is the plain softmax over its allowed keys.
    for b in range(2):
        for h in range(3):
            for i in range(5):
                allowed = [j for j in range(5) if bool(mask[b, 0, i, j])]
                if not allowed:
                    continue
                exps = [math.exp(float(scores[b, h, i, j])) for j in allowed]
                for j, e in zip(allowed, exps, strict=True):
                    assert float(weights[b, h, i, j]) == pytest.approx(e / sum(exps), rel=1e-5)
    # Rows with no allowed key stay finite and uniform (callers zero them).
    assert torch.isfinite(weights).all()
    assert_close(weights[~valid_rows], torch.full((2 * 3, 5), 0.2))
