"""Attention score functions and masks: pure functions on tensors.

A score function turns queries and keys into raw scores S (B, H, L, L) before masking and
softmax. SASRec uses the scaled dot product; STOSA the negative squared 2-Wasserstein distance
between diagonal Gaussians. The backbone applies `masked_softmax` and hands the weights A to a
refinement mechanism (awr/models/refine.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MIN_COV = 1e-24


def attention_mask(input_ids: Tensor) -> Tensor:
    """Causal + key-padding mask (B, 1, L, L), True where query i may attend to key j.

    input_ids: (B, L) with 0 as left padding.
    """
    length = input_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
    keys = (input_ids > 0)[:, None, None, :]  # (B, 1, 1, L)
    return causal[None, None] & keys  # (B, 1, L, L)


def padding_columns(input_ids: Tensor) -> int:
    """How many leading columns of a left-padded batch (B, L) are padding in every row.

    The backbones skip them: with causal attention and masked padded keys, outputs at the other
    positions do not change (the tests compare both).
    """
    used = (input_ids > 0).any(0)  # (L,)
    return int(used.int().argmax()) if bool(used.any()) else 0


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis with masked entries at zero weight.

    Rows with no allowed key (left padding) come out uniform over the masked keys; callers zero
    them with the query mask. Using the dtype's minimum instead of -inf keeps them finite.
    """
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1)


def dot_product_scores(query: Tensor, key: Tensor) -> Tensor:
    """Scaled dot product: (B, H, L, d) x (B, H, L, d) -> (B, H, L, L)."""
    return query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])


def wasserstein_distance_matrix(
    mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor
) -> Tensor:
    """Squared 2-Wasserstein distance between diagonal Gaussians, all pairs, as matmuls.

    mean_a, cov_a: (..., M, d); mean_b, cov_b: (..., N, d) -> (..., M, N).
    W2 = |mu_a|^2 + |mu_b|^2 - 2 mu_a.mu_b + sum(c_a) + sum(c_b) - 2 sqrt(c_a).sqrt(c_b)
    """
    sqrt_a = cov_a.clamp_min(MIN_COV).sqrt()
    sqrt_b = cov_b.clamp_min(MIN_COV).sqrt()
    means = (
        mean_a.pow(2).sum(-1, keepdim=True)
        + mean_b.pow(2).sum(-1).unsqueeze(-2)
        - 2 * mean_a @ mean_b.transpose(-1, -2)
    )
    covs = (
        cov_a.sum(-1, keepdim=True)
        + cov_b.sum(-1).unsqueeze(-2)
        - 2 * sqrt_a @ sqrt_b.transpose(-1, -2)
    )
    return (means + covs).clamp_min(MIN_COV)


def wasserstein_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> Tensor:
    """Squared 2-Wasserstein distance, element-wise over matching rows: (..., d) -> (...)."""
    mean_part = (mean_a - mean_b).pow(2).sum(-1)
    cov_part = (cov_a.clamp_min(MIN_COV).sqrt() - cov_b.clamp_min(MIN_COV).sqrt()).pow(2).sum(-1)
    return mean_part + cov_part


def wasserstein_query_factors(mean: Tensor, cov: Tensor) -> Tensor:
    """Left factors of -W2, (..., M, d) -> (..., M, 2d + 2):
    [2 mu, 2 sqrt(c), -(|mu|^2 + sum c), 1]."""
    sqrt = cov.clamp_min(MIN_COV).sqrt()
    norm = mean.pow(2).sum(-1, keepdim=True) + cov.sum(-1, keepdim=True)  # (..., M, 1)
    return torch.cat([2 * mean, 2 * sqrt, -norm, torch.ones_like(norm)], dim=-1)


def wasserstein_item_factors(mean: Tensor, cov: Tensor) -> Tensor:
    """Right factors of -W2, (..., N, d) -> (..., N, 2d + 2):
    [mu, sqrt(c), 1, -(|mu|^2 + sum c)]."""
    sqrt = cov.clamp_min(MIN_COV).sqrt()
    norm = mean.pow(2).sum(-1, keepdim=True) + cov.sum(-1, keepdim=True)
    return torch.cat([mean, sqrt, torch.ones_like(norm), -norm], dim=-1)


def negative_wasserstein_matrix(
    mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor
) -> Tensor:
    """-W2 for all pairs, (..., M, d) x (..., N, d) -> (..., M, N), as ONE matmul of augmented
    vectors (the two factor functions above), with no further (M, N) temporaries; at most
    -MIN_COV, as W2 is at least MIN_COV."""
    left = wasserstein_query_factors(mean_a, cov_a)
    right = wasserstein_item_factors(mean_b, cov_b)
    return (left @ right.transpose(-1, -2)).clamp_max(-MIN_COV)


def wasserstein_scores(mean_q: Tensor, cov_q: Tensor, mean_k: Tensor, cov_k: Tensor) -> Tensor:
    """STOSA's score: -W2(q_i, k_j) / sqrt(d), (B, H, L, d) each -> (B, H, L, L)."""
    distance = negative_wasserstein_matrix(mean_q, cov_q, mean_k, cov_k)
    return distance / math.sqrt(mean_q.shape[-1])
