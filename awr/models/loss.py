"""Training losses: pure functions of scores or distances and a validity mask.

`valid` is a bool tensor marking non-padding target positions; every loss is averaged over them:
over all of them by default, or over `dims` only (packed members: (K, B, L) -> (K,) with
dims=(1, 2), one loss per member).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

Dims = tuple[int, ...] | None


def masked_mean(values: Tensor, valid: Tensor, dims: Dims = None) -> Tensor:
    """Mean of `values` over the `valid` positions (of `dims`; all when None)."""
    if dims is None:
        return (values * valid).sum() / valid.sum().clamp_min(1)
    return (values * valid).sum(dims) / valid.sum(dims).clamp_min(1)


def bce_loss(pos_scores: Tensor, neg_scores: Tensor, valid: Tensor, dims: Dims = None) -> Tensor:
    """SASRec's loss: -log s(pos) - log(1 - s(neg)) per position, one sampled negative each."""
    per_position = -(F.logsigmoid(pos_scores) + F.logsigmoid(-neg_scores))
    return masked_mean(per_position, valid, dims)


def ce_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Softmax cross-entropy over all items. logits (M, N+1) with column 0 the padding id, which
    is never a target and is excluded from the softmax; targets (M,) in 1..N."""
    logits = logits.clone()
    logits[:, 0] = torch.finfo(logits.dtype).min
    return F.cross_entropy(logits, targets)


def stosa_loss(
    pos_distance: Tensor,
    neg_distance: Tensor,
    pos_neg_distance: Tensor,
    valid: Tensor,
    pvn_weight: float,
    dims: Dims = None,
) -> Tensor:
    """STOSA: BPR on distances, -log s(W2(seq, neg) - W2(seq, pos)), plus the positive-vs-negative
    term pvn_weight * mean(clamp(W2(seq, pos) - W2(pos, neg), 0))."""
    bpr = -F.logsigmoid(neg_distance - pos_distance)
    pvn = (pos_distance - pos_neg_distance).clamp_min(0)
    return masked_mean(bpr, valid, dims) + pvn_weight * masked_mean(pvn, valid, dims)
