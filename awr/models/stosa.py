"""STOSA (Fan et al., WWW 2022): stochastic self-attention with Wasserstein scores (docs/models.md).

Every item and position has a mean and a diagonal covariance embedding (D-vectors).
embedding:  mean = ELU(Dropout(LN(E_mu[item] + P_mu[pos])))
            cov  = ELU(Dropout(LN(E_sigma[item] + P_sigma[pos]))) + 1      (one shared LN)
layer (x num_layers):
    Q_mu, K_mu, V_mu = Linear(mean);  Q_s, K_s, V_s = ELU(Linear(cov)) + 1
    A = softmax(mask(-W2(Q_i, K_j) / sqrt(D/H)))          (B, H, L, L)
    R = refinement(A)                                      (identity for the original)
    mean = LN(mean + Dropout(Dense(R V_mu)));  cov = LN(cov + Dropout(Dense((R * R) V_s)))
    mean = FFN_mu(mean);  cov = ELU(FFN_s(cov)) + 1        (FFN: Linear, ELU, Linear, Dropout,
                                                            residual, LN)
score: -W2 between the last position's Gaussian and each item's (E_mu, ELU(E_sigma) + 1).

`stosa_released_code=True` reproduces the released code, whose encoder loop assigns each
layer's mean output to a misspelt variable: every layer then reads the embedding mean, and the
final mean representation is the embedding layer's mean output.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from awr.config import TrialConfig
from awr.models.attention import (
    MIN_COV,
    attention_mask,
    masked_softmax,
    padding_columns,
    wasserstein_distance,
    wasserstein_distance_matrix,
    wasserstein_item_factors,
    wasserstein_query_factors,
    wasserstein_scores,
)
from awr.models.contract import Backbone
from awr.models.loss import ce_loss, stosa_loss
from awr.models.refine import Refinement
from awr.models.sasrec import FeedForward, init_weights, merge_heads, split_heads

GaussianScoreFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
RefinementFactory = Callable[[], Refinement]


def positive(x: Tensor) -> Tensor:
    """ELU(x) + 1: STOSA's map to positive covariances."""
    return F.elu(x) + 1


class WassersteinAttention(nn.Module):
    def __init__(
        self, config: TrialConfig, score_fn: GaussianScoreFn, refinement: Refinement
    ) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_heads
        self.mean_qkv = nn.ModuleList(nn.Linear(d, d) for _ in range(3))
        self.cov_qkv = nn.ModuleList(nn.Linear(d, d) for _ in range(3))
        self.score_fn = score_fn
        self.refinement = refinement
        self.attn_dropout = nn.Dropout(config.attn_dropout)
        self.mean_dense = nn.Linear(d, d)
        self.cov_dense = nn.Linear(d, d)
        self.dropout = nn.Dropout(config.dropout)
        self.norm = nn.LayerNorm(d, eps=1e-12)  # shared by both streams, as in the reference
        self.captured: list[tuple[Tensor, Tensor]] | None = None  # set to [] to record A, A'

    def forward(
        self, mean: Tensor, cov: Tensor, mask: Tensor, query_mask: Tensor, last_only: bool = False
    ) -> tuple[Tensor, Tensor]:
        """mean, cov (B, L, D); mask (B, 1, L, L) bool; query_mask (B, 1, L, 1) -> mean, cov
        (B, L, D), or (B, 1, D) for the last position only when `last_only`."""
        rows = slice(-1, None) if last_only else slice(None)
        plain = self.refinement.is_identity and self.captured is None
        queries = rows if plain else slice(None)  # a mechanism needs every row of A
        q_mu, k_mu, v_mu = (
            split_heads(lin(x), self.num_heads)
            for lin, x in zip(self.mean_qkv, (mean[:, queries], mean, mean), strict=True)
        )
        q_s, k_s, v_s = (
            split_heads(positive(lin(x)), self.num_heads)
            for lin, x in zip(self.cov_qkv, (cov[:, queries], cov, cov), strict=True)
        )
        mask, query_mask = mask[..., queries, :], query_mask[:, :, queries]
        attn = masked_softmax(self.score_fn(q_mu, q_s, k_mu, k_s), mask)  # A: (B, H, L, L)
        wanted = rows if self.captured is None else slice(None)
        refined = self.refinement(attn, mask, query_mask, wanted)  # R replaces A
        if self.captured is not None:
            self.captured.append((attn.detach() * query_mask, refined.detach()))
        weights = self.attn_dropout(refined[..., rows, :])  # (B, H, L or 1, L)
        mean_context = merge_heads(weights @ v_mu)  # (B, L or 1, D)
        cov_context = merge_heads((weights * weights) @ v_s)  # (B, L or 1, D)
        mean = self.norm(mean[:, rows] + self.dropout(self.mean_dense(mean_context)))
        cov = self.norm(cov[:, rows] + self.dropout(self.cov_dense(cov_context)))
        return mean, cov


class STOSALayer(nn.Module):
    def __init__(self, config: TrialConfig, score_fn: GaussianScoreFn, refinement: Refinement):
        super().__init__()
        self.attention = WassersteinAttention(config, score_fn, refinement)
        self.mean_ffn = FeedForward(config.hidden_size, config.dropout, F.elu)
        self.cov_ffn = FeedForward(config.hidden_size, config.dropout, F.elu)

    def forward(
        self, mean: Tensor, cov: Tensor, mask: Tensor, query_mask: Tensor, last_only: bool = False
    ) -> tuple[Tensor, Tensor]:
        mean, cov = self.attention(mean, cov, mask, query_mask, last_only)
        return self.mean_ffn(mean), positive(self.cov_ffn(cov))


class STOSA(Backbone):
    score_ceiling = -MIN_COV  # awr/models/scoring.py: the scores are -W2 <= -MIN_COV

    def __init__(
        self,
        config: TrialConfig,
        num_items: int,
        refinement_factory: RefinementFactory,
        score_fn: GaussianScoreFn = wasserstein_scores,
    ) -> None:
        super().__init__(config, num_items)
        d = config.hidden_size
        self.item_mean = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.item_cov = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.position_mean = nn.Embedding(config.max_len, d)
        self.position_cov = nn.Embedding(config.max_len, d)
        self.embedding_norm = nn.LayerNorm(d, eps=1e-12)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            STOSALayer(config, score_fn, refinement_factory()) for _ in range(config.num_layers)
        )
        self.apply(partial(init_weights, mean=0.01))  # the released code's init

    def attention_layers(self) -> list[WassersteinAttention]:
        return [layer.attention for layer in self.layers]

    def embed(self, input_ids: Tensor, skipped: int = 0) -> tuple[Tensor, Tensor]:
        """(B, l) ids of the last l positions -> mean, cov (B, l, D)."""
        positions = torch.arange(skipped, skipped + input_ids.shape[1], device=input_ids.device)
        mean = self.item_mean(input_ids) + self.position_mean(positions)[None]
        cov = self.item_cov(input_ids) + self.position_cov(positions)[None]
        mean = F.elu(self.embedding_dropout(self.embedding_norm(mean)))
        cov = positive(self.embedding_dropout(self.embedding_norm(cov)))
        return mean, cov

    def encode_window(
        self, input_ids: Tensor, last_only: bool = False
    ) -> tuple[Tensor, Tensor, int]:
        """(B, L) -> mean, cov of the last l positions (B, l, D) and the L - l skipped; with
        `last_only` the final layer computes the last position alone: (B, 1, D)."""
        skipped = padding_columns(input_ids) if self.trim_padding else 0
        input_ids = input_ids[:, skipped:]  # (B, l)
        mean, cov = self.embed(input_ids, skipped)
        mask = attention_mask(input_ids)  # (B, 1, L, L)
        query_mask = (input_ids > 0)[:, None, :, None].to(mean.dtype)  # (B, 1, L, 1)
        for index, layer in enumerate(self.layers):
            final = last_only and index == len(self.layers) - 1
            layer_mean, cov = layer(mean, cov, mask, query_mask, final)
            if not self.config.stosa_released_code:
                mean = layer_mean
        if last_only:
            mean = mean[:, -1:]  # the released code's mean is the embedding's, all positions
        return mean, cov, skipped

    def item_gaussians(self, item_ids: Tensor) -> tuple[Tensor, Tensor]:
        return self.item_mean(item_ids), positive(self.item_cov(item_ids))

    def loss(self, input_ids: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        """input_ids, targets, negatives (B, L); 0 marks padding in targets."""
        mean, cov, skipped = self.encode_window(input_ids)  # (B, l, D)
        targets, negatives = targets[:, skipped:], negatives[:, skipped:]
        valid = targets > 0
        if self.config.loss == "ce":
            item_mean, item_cov = self.item_gaussians_all()  # (N+1, D) each
            logits = -wasserstein_distance_matrix(mean[valid], cov[valid], item_mean, item_cov)
            return ce_loss(logits, targets[valid])
        pos_mean, pos_cov = self.item_gaussians(targets)
        neg_mean, neg_cov = self.item_gaussians(negatives)
        pos_distance = wasserstein_distance(mean, cov, pos_mean, pos_cov)  # (B, L)
        neg_distance = wasserstein_distance(mean, cov, neg_mean, neg_cov)
        pos_neg_distance = wasserstein_distance(pos_mean, pos_cov, neg_mean, neg_cov)
        return stosa_loss(
            pos_distance, neg_distance, pos_neg_distance, valid, self.config.pvn_weight
        )

    def query_factors(self, input_ids: Tensor) -> Tensor:
        """The last position's Gaussian as -W2's left factors: (B, L) -> (B, 2D + 2)."""
        mean, cov, _ = self.encode_window(input_ids, last_only=True)  # (B, 1, D)
        return wasserstein_query_factors(mean[:, -1], cov[:, -1])

    def item_factors(self) -> Tensor:
        """Every item's Gaussian as -W2's right factors: (N+1, 2D + 2)."""
        return wasserstein_item_factors(*self.item_gaussians_all())

    def item_gaussians_all(self) -> tuple[Tensor, Tensor]:
        return self.item_mean.weight, positive(self.item_cov.weight)
