"""Full-ranking scores as one product of factors (docs/protocol.md): both backbones score item i
for user u as min(q_u . v_i, ceiling), with a query factor q_u (K,) from the encoder and an item
factor v_i (K,) that does not depend on the user:

    SASRec: q_u = h_u (the last position's hidden state), v_i = E[i], no ceiling (K = D).
    STOSA:  q_u = [2 mu_u, 2 sqrt(c_u), -(|mu_u|^2 + sum c_u), 1],
            v_i = [mu_i, sqrt(c_i), 1, -(|mu_i|^2 + sum c_i)], ceiling -MIN_COV (K = 2D + 2):
            q_u . v_i = -W2(u, i).

Evaluation builds the item factors once per pass and writes each batch's scores into one
reused buffer (awr/eval/evaluate.py); `score_all` is the same product for one batch.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class FactorScorer(Protocol):
    """A model whose full-ranking scores are factor_scores(query_factors(x), item_factors())."""

    score_ceiling: float | None

    def query_factors(self, input_ids: Tensor) -> Tensor:
        """(B, L) left-padded ids -> (B, K)."""

    def item_factors(self) -> Tensor:
        """(N+1, K), row 0 the padding id."""


def factor_scores(
    queries: Tensor, items: Tensor, ceiling: float | None, out: Tensor | None = None
) -> Tensor:
    """queries (B, K), items (N+1, K) -> scores (B, N+1) = min(queries @ items^T, ceiling).

    Computed as items @ queries^T, (N+1, B) in memory (on CPU the faster orientation of this
    long-and-thin product; the same values), into `out` (N+1, B) when given, so that a caller
    can reuse one buffer; the result is the transposed view. Without autograd the ceiling is
    applied in place."""
    product = torch.mm(items, queries.T, out=out) if out is not None else items @ queries.T
    if ceiling is not None:
        if torch.is_grad_enabled() and product.requires_grad:
            product = product.clamp_max(ceiling)
        else:
            product.clamp_max_(ceiling)
    return product.T


def has_factors(model: object) -> bool:
    """Whether `model` implements FactorScorer (the test models of evaluation do not)."""
    return all(hasattr(model, name) for name in ("query_factors", "item_factors", "score_ceiling"))
