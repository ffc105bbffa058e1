"""Training losses of packed models (awr/models/packed.py): SASRec's and STOSA's loss for K
members at once, op for op as SASRec.loss and STOSA.loss, on activations with a leading member
axis: ids (K, B, L), hidden states (K, B, l, D), attention weights (K, B, H, l, l).

The score functions, masks, refinements and loss formulas are the backbones' own (pure
functions of awr/models/attention.py, refine.py and loss.py); only the parametric
layers are the packed ones. The leading columns that are padding in every row of every member
are skipped, as the backbones skip them per batch (outputs unchanged). Dropout draws come from
each member's own generator (`MemberDropout`). Evaluation does not run here: a member's
parameters load into an ordinary model (`member_state`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from awr.models.attention import (
    attention_mask,
    masked_softmax,
    padding_columns,
    wasserstein_distance,
    wasserstein_distance_matrix,
)
from awr.models.loss import bce_loss, ce_loss, stosa_loss
from awr.models.packed import MemberDropout, embedding, layer_norm, linear, refine
from awr.models.sasrec import SASRec, SelfAttention
from awr.models.stosa import STOSA, STOSALayer, positive

MEMBER_DIMS = (1, 2)  # the (B, l) axes of (K, B, l): one mean per member


def packed_loss(
    model: nn.Module, input_ids: Tensor, targets: Tensor, negatives: Tensor, drop: MemberDropout
) -> Tensor:
    """input_ids, targets, negatives (K, B, L), 0 marking padding -> each member's loss (K,)."""
    if isinstance(model, SASRec):
        return sasrec_loss(model, input_ids, targets, negatives, drop)
    if isinstance(model, STOSA):
        return stosa_packed_loss(model, input_ids, targets, negatives, drop)
    raise TypeError(f"no packed form of {type(model).__name__}")


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(K, B, l, D) -> (K, B, H, l, D/H)."""
    members, batch, length, dim = x.shape
    return x.view(members, batch, length, num_heads, dim // num_heads).transpose(2, 3)


def merge_heads(x: Tensor) -> Tensor:
    """(K, B, H, l, d) -> (K, B, l, H*d)."""
    members, batch, heads, length, dim = x.shape
    return x.transpose(2, 3).reshape(members, batch, length, heads * dim)


def trimmed(model: nn.Module, *tensors: Tensor) -> tuple[int, list[Tensor]]:
    """The leading columns that are padding in every row of every member, and the tensors
    (K, B, L) without them."""
    skipped = padding_columns(tensors[0].flatten(0, 1)) if model.trim_padding else 0
    return skipped, [t[..., skipped:] for t in tensors]


def masks(input_ids: Tensor) -> tuple[Tensor, Tensor]:
    """ids (K, B, l) -> causal + key-padding mask (K, B, 1, l, l), query mask (K, B, 1, l, 1)."""
    members, batch, length = input_ids.shape
    mask = attention_mask(input_ids.flatten(0, 1)).view(members, batch, 1, length, length)
    return mask, (input_ids > 0)[:, :, None, :, None]


def positions(table: nn.Embedding, skipped: int, length: int) -> Tensor:
    """Position embeddings of the kept columns, (K, 1, l, D)."""
    return table.weight[:, None, skipped : skipped + length]


def feed_forward(ffn: nn.Module, x: Tensor, drop: MemberDropout) -> Tensor:
    """FeedForward: LN(x + Dropout(W2 act(W1 x)))."""
    inner = ffn.activation(linear(ffn.inner, x))
    return layer_norm(ffn.norm, x + drop(linear(ffn.outer, inner), ffn.dropout.p))


def member_ce_losses(hidden_at: list[Tensor], logits_of, targets: Tensor, valid: Tensor) -> Tensor:
    """Cross-entropy over all items per member (the valid positions differ in number)."""
    losses = [
        ce_loss(logits_of(k, hidden), targets[k][valid[k]]) for k, hidden in enumerate(hidden_at)
    ]
    return torch.stack(losses)


# --- SASRec -----------------------------------------------------------------------------------


def sasrec_attention(
    att: SelfAttention, x: Tensor, mask: Tensor, query_mask: Tensor, drop: MemberDropout
) -> Tensor:
    """SelfAttention on every row: x (K, B, l, D) -> (K, B, l, D)."""
    heads = att.num_heads
    q = split_heads(linear(att.query, x), heads)  # (K, B, H, l, d)
    k = split_heads(linear(att.key, x), heads)
    v = split_heads(linear(att.value, x), heads)
    attn_p = att.attn_dropout.p if drop.training else 0.0
    if att.fused and att.refinement.is_identity and attn_p == 0.0:
        additive = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
        additive.masked_fill_(~mask, torch.finfo(q.dtype).min)
        flat = [t.flatten(0, 1) for t in (q, k, v, additive)]  # SDPA wants (N, H, l, d)
        context = F.scaled_dot_product_attention(*flat[:3], attn_mask=flat[3])
        context = context.view(q.shape) * query_mask
    else:
        attn = masked_softmax(att.score_fn(q, k), mask)  # A: (K, B, H, l, l)
        refined = refine(att.refinement, attn, mask, query_mask)
        context = drop(refined, attn_p) @ v
    out = linear(att.dense, merge_heads(context))
    return layer_norm(att.norm, x + drop(out, att.dropout.p))


def sasrec_loss(
    model: SASRec, input_ids: Tensor, targets: Tensor, negatives: Tensor, drop: MemberDropout
) -> Tensor:
    """SASRec.loss per member: BCE with one sampled negative, or CE over all items."""
    skipped, (input_ids, targets, negatives) = trimmed(model, input_ids, targets, negatives)
    x = embedding(model.item_embedding, input_ids)
    x = x + positions(model.position_embedding, skipped, input_ids.shape[-1])
    x = drop(layer_norm(model.embedding_norm, x), model.embedding_dropout.p)
    mask, query_mask = masks(input_ids)
    query_mask = query_mask.to(x.dtype)
    for block in model.blocks:
        x = sasrec_attention(block.attention, x, mask, query_mask, drop)
        x = feed_forward(block.ffn, x, drop)
    valid = targets > 0
    if model.config.loss == "ce":
        table = model.item_embedding.weight  # (K, N+1, D)
        hidden = [x[k][valid[k]] for k in range(x.shape[0])]
        return member_ce_losses(hidden, lambda k, h: h @ table[k].T, targets, valid)
    pos = (x * embedding(model.item_embedding, targets)).sum(-1)  # (K, B, l)
    neg = (x * embedding(model.item_embedding, negatives)).sum(-1)
    return bce_loss(pos, neg, valid, MEMBER_DIMS)


# --- STOSA ------------------------------------------------------------------------------------


def stosa_layer(
    layer: STOSALayer,
    mean: Tensor,
    cov: Tensor,
    mask: Tensor,
    query_mask: Tensor,
    drop: MemberDropout,
) -> tuple[Tensor, Tensor]:
    """WassersteinAttention then the two feed-forwards, every row: mean, cov (K, B, l, D)."""
    att = layer.attention
    heads = att.num_heads
    q_mu, k_mu, v_mu = (split_heads(linear(lin, mean), heads) for lin in att.mean_qkv)
    q_s, k_s, v_s = (split_heads(positive(linear(lin, cov)), heads) for lin in att.cov_qkv)
    attn = masked_softmax(att.score_fn(q_mu, q_s, k_mu, k_s), mask)  # A: (K, B, H, l, l)
    refined = refine(att.refinement, attn, mask, query_mask)
    weights = drop(refined, att.attn_dropout.p)
    mean_context = merge_heads(weights @ v_mu)
    cov_context = merge_heads((weights * weights) @ v_s)
    mean = layer_norm(att.norm, mean + drop(linear(att.mean_dense, mean_context), att.dropout.p))
    cov = layer_norm(att.norm, cov + drop(linear(att.cov_dense, cov_context), att.dropout.p))
    return feed_forward(layer.mean_ffn, mean, drop), positive(
        feed_forward(layer.cov_ffn, cov, drop)
    )


def stosa_packed_loss(
    model: STOSA, input_ids: Tensor, targets: Tensor, negatives: Tensor, drop: MemberDropout
) -> Tensor:
    """STOSA.loss per member: BPR on W2 distances plus the pvn term, or CE over all items."""
    skipped, (input_ids, targets, negatives) = trimmed(model, input_ids, targets, negatives)
    length = input_ids.shape[-1]
    mean = embedding(model.item_mean, input_ids) + positions(model.position_mean, skipped, length)
    cov = embedding(model.item_cov, input_ids) + positions(model.position_cov, skipped, length)
    p = model.embedding_dropout.p
    mean = F.elu(drop(layer_norm(model.embedding_norm, mean), p))
    cov = positive(drop(layer_norm(model.embedding_norm, cov), p))
    mask, query_mask = masks(input_ids)
    query_mask = query_mask.to(mean.dtype)
    for layer in model.layers:
        layer_mean, cov = stosa_layer(layer, mean, cov, mask, query_mask, drop)
        if not model.config.stosa_released_code:
            mean = layer_mean
    valid = targets > 0
    if model.config.loss == "ce":
        item_mean, item_cov = model.item_mean.weight, positive(model.item_cov.weight)
        hidden = [(mean[k][valid[k]], cov[k][valid[k]]) for k in range(mean.shape[0])]

        def logits(k: int, h: tuple[Tensor, Tensor]) -> Tensor:
            return -wasserstein_distance_matrix(h[0], h[1], item_mean[k], item_cov[k])

        return member_ce_losses(hidden, logits, targets, valid)
    pos_mean, pos_cov = (
        embedding(model.item_mean, targets),
        positive(embedding(model.item_cov, targets)),
    )
    neg_mean = embedding(model.item_mean, negatives)
    neg_cov = positive(embedding(model.item_cov, negatives))
    pos_distance = wasserstein_distance(mean, cov, pos_mean, pos_cov)  # (K, B, l)
    neg_distance = wasserstein_distance(mean, cov, neg_mean, neg_cov)
    pos_neg_distance = wasserstein_distance(pos_mean, pos_cov, neg_mean, neg_cov)
    return stosa_loss(
        pos_distance, neg_distance, pos_neg_distance, valid, model.config.pvn_weight, MEMBER_DIMS
    )
