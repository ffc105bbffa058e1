"""SASRec (Kang & McAuley 2018), the S3-Rec-style variant of the STOSA code (docs/models.md).

embedding: LN(item + position) -> dropout
block (post-LN, x num_layers):
    x = LN(x + Dropout(Dense(Attention(x))))
    x = LN(x + Dropout(W2 gelu(W1 x)))
score: dot product of a position's output with the item embedding.

The attention score function and the refinement mechanism are handed in, so that the weights
A (B, H, L, L) are explicit and a mechanism can replace them (awr/models/refine.py). With no
mechanism and no capture, `fused` layers (the registry sets it where the score function is the
scaled dot product) compute the same thing with the scaled_dot_product_attention kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from awr.config import TrialConfig
from awr.models.attention import (
    attention_mask,
    dot_product_scores,
    masked_softmax,
    padding_columns,
)
from awr.models.contract import Backbone
from awr.models.loss import bce_loss, ce_loss
from awr.models.refine import Refinement

ScoreFn = Callable[[Tensor, Tensor], Tensor]
RefinementFactory = Callable[[], Refinement]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, L, D) -> (B, H, L, D/H)."""
    batch, length, dim = x.shape
    return x.view(batch, length, num_heads, dim // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, L, d) -> (B, L, H*d)."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


class SelfAttention(nn.Module):
    """`fused`: `score_fn` is the scaled dot product, so that without a mechanism and without
    capture the fused kernel may compute the layer."""

    def __init__(
        self, config: TrialConfig, score_fn: ScoreFn, refinement: Refinement, fused: bool = False
    ) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.score_fn = score_fn
        self.fused = fused
        self.refinement = refinement
        self.attn_dropout = nn.Dropout(config.attn_dropout)
        self.dense = nn.Linear(d, d)
        self.dropout = nn.Dropout(config.dropout)
        self.norm = nn.LayerNorm(d, eps=1e-12)
        self.captured: list[tuple[Tensor, Tensor]] | None = None  # set to [] to record A, A'

    def forward(
        self, x: Tensor, mask: Tensor, query_mask: Tensor, last_only: bool = False
    ) -> Tensor:
        """x (B, L, D), mask (B, 1, L, L) bool, query_mask (B, 1, L, 1) -> (B, L, D), or
        (B, 1, D) for the last position only when `last_only` (scoring needs no more)."""
        rows = slice(-1, None) if last_only else slice(None)
        k = split_heads(self.key(x), self.num_heads)  # (B, H, L, d)
        v = split_heads(self.value(x), self.num_heads)
        if self.fused and self.refinement.is_identity and self.captured is None:
            q = split_heads(self.query(x[:, rows]), self.num_heads)  # (B, H, L or 1, d)
            additive_mask = torch.zeros(mask[..., rows, :].shape, dtype=q.dtype, device=q.device)
            additive_mask.masked_fill_(~mask[..., rows, :], torch.finfo(q.dtype).min)
            p = self.attn_dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask, dropout_p=p)
            context = context * query_mask[:, :, rows]  # (B, H, L or 1, d)
        else:
            q = split_heads(self.query(x), self.num_heads)  # a mechanism needs every row of A
            attn = masked_softmax(self.score_fn(q, k), mask)  # A: (B, H, L, L)
            wanted = rows if self.captured is None else slice(None)
            refined = self.refinement(attn, mask, query_mask, wanted)  # R replaces A
            if self.captured is not None:
                self.captured.append((attn.detach() * query_mask, refined.detach()))
            context = self.attn_dropout(refined[..., rows, :]) @ v  # (B, H, L or 1, d)
        out = self.dense(merge_heads(context))
        return self.norm(x[:, rows] + self.dropout(out))


class FeedForward(nn.Module):
    """x -> LN(x + Dropout(W2 act(W1 x))), inner size 4D (SASRec: GELU; STOSA: ELU)."""

    def __init__(
        self, hidden_size: int, dropout: float, activation: Callable[[Tensor], Tensor] = F.gelu
    ) -> None:
        super().__init__()
        self.activation = activation
        self.inner = nn.Linear(hidden_size, 4 * hidden_size)
        self.outer = nn.Linear(4 * hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden_size, eps=1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.dropout(self.outer(self.activation(self.inner(x)))))


class SASRecBlock(nn.Module):
    def __init__(
        self, config: TrialConfig, score_fn: ScoreFn, refinement: Refinement, fused: bool = False
    ) -> None:
        super().__init__()
        self.attention = SelfAttention(config, score_fn, refinement, fused)
        self.ffn = FeedForward(config.hidden_size, config.dropout)

    def forward(
        self, x: Tensor, mask: Tensor, query_mask: Tensor, last_only: bool = False
    ) -> Tensor:
        return self.ffn(self.attention(x, mask, query_mask, last_only))


def init_weights(module: nn.Module, mean: float = 0.0, std: float = 0.02) -> None:
    """normal(mean, std) for Linear and Embedding weights, zero Linear bias, LayerNorm weight 1
    and bias 0 (SASRec: mean 0; the STOSA code: mean 0.01)."""
    if isinstance(module, nn.Linear | nn.Embedding):
        module.weight.data.normal_(mean, std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
    if isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


class SASRec(Backbone):
    """`fused`: the layers may use the fused kernel (only right where `score_fn` is the scaled
    dot product; the registry passes it)."""

    score_ceiling = None  # awr/models/scoring.py: the scores are h_u . E[i]

    def __init__(
        self,
        config: TrialConfig,
        num_items: int,
        refinement_factory: RefinementFactory,
        score_fn: ScoreFn = dot_product_scores,
        fused: bool = False,
    ) -> None:
        super().__init__(config, num_items)
        d = config.hidden_size
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.embedding_norm = nn.LayerNorm(d, eps=1e-12)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            SASRecBlock(config, score_fn, refinement_factory(), fused)
            for _ in range(config.num_layers)
        )
        self.apply(init_weights)

    def attention_layers(self) -> list[SelfAttention]:
        return [block.attention for block in self.blocks]

    def encode_window(self, input_ids: Tensor, last_only: bool = False) -> tuple[Tensor, int]:
        """(B, L) -> hidden states of the last l positions (B, l, D) and the L - l skipped;
        with `last_only` the final layer computes the last position alone: (B, 1, D)."""
        skipped = padding_columns(input_ids) if self.trim_padding else 0
        input_ids = input_ids[:, skipped:]  # (B, l)
        positions = torch.arange(skipped, skipped + input_ids.shape[1], device=input_ids.device)
        x = self.item_embedding(input_ids) + self.position_embedding(positions)[None]
        x = self.embedding_dropout(self.embedding_norm(x))  # (B, L, D)
        mask = attention_mask(input_ids)  # (B, 1, L, L)
        query_mask = (input_ids > 0)[:, None, :, None].to(x.dtype)  # (B, 1, L, 1)
        for index, block in enumerate(self.blocks):
            x = block(x, mask, query_mask, last_only and index == len(self.blocks) - 1)
        return x, skipped

    def loss(self, input_ids: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        """input_ids, targets, negatives (B, L); 0 marks padding in targets."""
        hidden, skipped = self.encode_window(input_ids)  # (B, l, D)
        targets, negatives = targets[:, skipped:], negatives[:, skipped:]
        valid = targets > 0
        if self.config.loss == "ce":
            logits = hidden[valid] @ self.item_embedding.weight.T  # (M, N+1)
            return ce_loss(logits, targets[valid])
        pos = (hidden * self.item_embedding(targets)).sum(-1)  # (B, L)
        neg = (hidden * self.item_embedding(negatives)).sum(-1)
        return bce_loss(pos, neg, valid)

    def query_factors(self, input_ids: Tensor) -> Tensor:
        """The last position's hidden state: (B, L) -> (B, D)."""
        return self.encode_window(input_ids, last_only=True)[0][:, -1]

    def item_factors(self) -> Tensor:
        """The item embedding table (N+1, D)."""
        return self.item_embedding.weight
