"""Attention weight refinement mechanisms (AWRSR section 2.3; docs/models.md).

Each mechanism is an nn.Module that takes the post-softmax attention weights A (B, H, L, L), the
causal + padding mask (B, 1, L, L) and the query mask (B, 1, L, 1), and returns the weights that
replace A in the aggregation: SASRec computes `R V`, STOSA `R V_mu` and `(R * R) V_sigma`.
So "what replaces A V" is always `R` aggregated by the backbone's own rule.

The backbones drop the leading columns that are padding in every row of a batch, so A may be a
window (B, H, l, l) over the last l <= L positions. The L x L matrices are then sliced to the
rows (and, for W'_V, columns) of those positions; the result equals the full computation
restricted to the window, because A is zero on padded keys and padded rows.

New parameters are L x L matrices (L = max_len) initialised normal(0, 0.02), shared across heads
unless `per_head` (then H x L x L). Every refined score matrix is masked again before its
softmax; rows of padded query positions are zeroed before and after refining, so the output at
position i depends on no input at a position > i.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from awr.models.attention import masked_softmax, wasserstein_scores

ALL_ROWS = slice(None)


def refine_simple(
    attn: Tensor, w_q: Tensor, w_k: Tensor, mask: Tensor, rows: slice = ALL_ROWS
) -> Tensor:
    """M1: Q' = A W'_Q, K' = A W'_K, A' = softmax(mask(Q' K'^T / sqrt(L))), for the query
    `rows` of A (all by default; scoring needs only the last).

    Computed as (A (W'_Q W'_K^T)) A^T: the same product with two batched (l, l) matmuls
    instead of three, since W'_Q W'_K^T is formed once per call, not per sequence.
    """
    window, length = attn.shape[-1], w_q.shape[-1]  # l <= L = max_len
    bilinear = w_q[..., -window:, :] @ w_k[..., -window:, :].transpose(-1, -2)  # (l, l)
    scores = (attn[..., rows, :] @ bilinear) @ attn.transpose(-1, -2)  # Q' K'^T: (B, H, r, l)
    return masked_softmax(scores / math.sqrt(length), mask[..., rows, :])


def refine_value(
    attn: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, mask: Tensor, rows: slice = ALL_ROWS
) -> Tensor:
    """M2: V' = A W'_V, A2 = mask(A' V') with A' from M1 (zeros where the mask forbids).
    A' (A W'_V) is computed as (A' A) W'_V, which costs (r, l) products for r rows."""
    refined = refine_simple(attn, w_q, w_k, mask, rows)  # (B, H, r, l)
    window = attn.shape[-1]
    product = (refined @ attn) @ w_v[..., -window:, -window:]  # (B, H, r, l)
    return product.masked_fill(~mask[..., rows, :], 0.0)


def refine_additive(
    attn: Tensor, w_q: Tensor, w_k: Tensor, mask: Tensor, mix: Tensor, rows: slice = ALL_ROWS
) -> Tensor:
    """M3: mix * A + (1 - mix) * A' with A' from M1; mix = 0.5 gives (A + A') / 2."""
    return mix * attn[..., rows, :] + (1 - mix) * refine_simple(attn, w_q, w_k, mask, rows)


def refine_stochastic(
    attn: Tensor, w_mu: Tensor, w_cov: Tensor, mask: Tensor, rows: slice = ALL_ROWS
) -> Tensor:
    """M4: a Gaussian per row of A, mu' = A W'_mu, c' = ELU(A W'_c) + 1,
    A' = softmax(mask(-W2(mu'_i, c'_i; mu'_j, c'_j) / sqrt(L))). Every row's Gaussian is
    needed as a key, so only the queries are restricted to `rows`."""
    window = attn.shape[-1]
    mean = attn @ w_mu[..., -window:, :]  # (B, H, l, L)
    cov = F.elu(attn @ w_cov[..., -window:, :]) + 1  # (B, H, l, L)
    scores = wasserstein_scores(mean[..., rows, :], cov[..., rows, :], mean, cov)  # / sqrt(L)
    return masked_softmax(scores, mask[..., rows, :])


class Refinement(nn.Module):
    """Base: holds the L x L matrices and applies the padded-row zeroing around `refine`."""

    is_identity = False
    matrices: tuple[str, ...] = ()

    def __init__(self, max_len: int, num_heads: int, per_head: bool) -> None:
        super().__init__()
        shape = (num_heads, max_len, max_len) if per_head else (max_len, max_len)
        for name in self.matrices:
            self.register_parameter(name, nn.Parameter(torch.randn(shape) * 0.02))

    def forward(
        self, attn: Tensor, mask: Tensor, query_mask: Tensor, rows: slice = ALL_ROWS
    ) -> Tensor:
        """attn (B, H, L, L), mask (B, 1, L, L) bool, query_mask (B, 1, L, 1) -> the refined
        weights of the query `rows`: (B, H, L, L) for all rows, (B, H, 1, L) for the last."""
        attn = attn * query_mask
        return self.refine(attn, mask, rows) * query_mask[:, :, rows]

    def refine(self, attn: Tensor, mask: Tensor, rows: slice) -> Tensor:
        raise NotImplementedError


class NoRefinement(Refinement):
    """The original backbone: A is used as it is."""

    is_identity = True

    def forward(
        self, attn: Tensor, mask: Tensor, query_mask: Tensor, rows: slice = ALL_ROWS
    ) -> Tensor:
        return (attn * query_mask)[..., rows, :]


class SimpleRefinement(Refinement):
    matrices = ("w_q", "w_k")

    def refine(self, attn: Tensor, mask: Tensor, rows: slice) -> Tensor:
        return refine_simple(attn, self.w_q, self.w_k, mask, rows)


class ValueRefinement(Refinement):
    matrices = ("w_q", "w_k", "w_v")

    def refine(self, attn: Tensor, mask: Tensor, rows: slice) -> Tensor:
        return refine_value(attn, self.w_q, self.w_k, self.w_v, mask, rows)


class AdditiveRefinement(Refinement):
    matrices = ("w_q", "w_k")

    def __init__(self, max_len: int, num_heads: int, per_head: bool, learned_mix: bool) -> None:
        super().__init__(max_len, num_heads, per_head)
        # sigmoid(0) = 0.5: the learned mix starts at the fixed default.
        self.mix_logit = nn.Parameter(torch.zeros(())) if learned_mix else None

    def refine(self, attn: Tensor, mask: Tensor, rows: slice) -> Tensor:
        mix = torch.sigmoid(self.mix_logit) if self.mix_logit is not None else attn.new_tensor(0.5)
        return refine_additive(attn, self.w_q, self.w_k, mask, mix, rows)


class StochasticRefinement(Refinement):
    matrices = ("w_mu", "w_cov")

    def refine(self, attn: Tensor, mask: Tensor, rows: slice) -> Tensor:
        return refine_stochastic(attn, self.w_mu, self.w_cov, mask, rows)


REFINEMENTS: dict[str, type[Refinement]] = {
    "none": NoRefinement,
    "simple": SimpleRefinement,
    "value": ValueRefinement,
    "additive": AdditiveRefinement,
    "stochastic": StochasticRefinement,
}


def build_refinement(
    name: str, max_len: int, num_heads: int, per_head: bool = False, learned_mix: bool = False
) -> Refinement:
    """One refinement module for one attention layer; `name` is a TrialConfig.mechanism
    (validated there: an unknown one is a ConfigError listing the valid names)."""
    if name == "additive":
        return AdditiveRefinement(max_len, num_heads, per_head, learned_mix)
    return REFINEMENTS[name](max_len, num_heads, per_head)


def extra_parameters(
    name: str, max_len: int, num_layers: int, num_heads: int = 1, per_head: bool = False
) -> int:
    """k * L^2 per layer (k = number of L x L matrices), times H if per head (docs/models.md)."""
    k = len(REFINEMENTS[name].matrices)
    return k * max_len * max_len * num_layers * (num_heads if per_head else 1)
