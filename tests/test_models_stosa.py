"""STOSA (awr/models/stosa.py): scoring and loss by brute force, the released-code option,
attention weights, causality and determinism."""

from __future__ import annotations

import math

import pytest
import torch
from model_helpers import encode
from torch.testing import assert_close

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig
from awr.models.registry import build_model

NUM_ITEMS = 12
MAX_LEN = 8
D = 16
IDS = torch.tensor(
    [
        [0, 0, 0, 4, 7, 2, 9, 1],
        [0, 3, 5, 5, 8, 2, 6, 10],
        [1, 2, 3, 4, 5, 6, 7, 8],
    ]
)


def config(**changes) -> TrialConfig:
    base = dict(
        backbone="stosa",
        max_len=MAX_LEN,
        hidden_size=D,
        num_heads=2,
        num_layers=2,
        dropout=0.0,
        attn_dropout=0.0,
    )
    base.update(changes)
    return TrialConfig(**base)


def build(seed: int = 0, **changes):
    torch.manual_seed(seed)
    return build_model(config(**changes), NUM_ITEMS).eval()


def enlarge_refinement(model, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.attention_layers():
            for param in layer.refinement.parameters():
                param.copy_(torch.randn(param.shape, generator=generator))


def elu_plus_one(x: float) -> float:
    return (x if x > 0 else math.exp(x) - 1) + 1


def w2(mean_a, cov_a, mean_b, cov_b) -> float:
    """Squared 2-Wasserstein distance of diagonal Gaussians, one coordinate at a time."""
    return sum(
        (float(mean_a[k]) - float(mean_b[k])) ** 2
        + (math.sqrt(float(cov_a[k])) - math.sqrt(float(cov_b[k]))) ** 2
        for k in range(len(mean_a))
    )


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


# ---- (a) score_all ------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["none", "stochastic"])
def test_score_all_is_negative_w2_to_each_item(mechanism):
    model = build(seed=4, mechanism=mechanism)
    with torch.no_grad():
        scores = model.score_all(IDS)
        mean, cov = encode(model, IDS)
    e_mu = model.item_mean.weight.detach()
    e_sigma = model.item_cov.weight.detach()
    assert scores.shape == (3, NUM_ITEMS + 1)
    expected = torch.empty(3, NUM_ITEMS + 1, dtype=torch.float64)
    for b in range(3):
        for n in range(NUM_ITEMS + 1):
            item_cov = [elu_plus_one(float(x)) for x in e_sigma[n]]
            expected[b, n] = -w2(mean[b, -1], cov[b, -1], e_mu[n], item_cov)
    assert_close(scores.double(), expected, rtol=1e-5, atol=1e-4)
    # The scores do discriminate: the spread across items is far above the tolerance.
    assert (expected.amax(1) - expected.amin(1)).min().item() > 1e-2


# ---- (b) loss by hand ---------------------------------------------------------------------

TARGETS = torch.tensor([[0, 0, 0, 7, 2, 9, 1, 3], [0, 5, 5, 8, 2, 6, 10, 0]])
NEGATIVES = torch.tensor([[0, 0, 0, 11, 12, 1, 2, 4], [0, 1, 2, 3, 4, 5, 6, 0]])
INPUTS = IDS[:2]


@pytest.mark.parametrize("mechanism", ["none", "value"])
@pytest.mark.parametrize("pvn_weight", [0.0, 0.1])
def test_bpr_plus_pvn_loss_by_hand(pvn_weight, mechanism):
    model = build(seed=6, pvn_weight=pvn_weight, mechanism=mechanism)
    with torch.no_grad():
        got = model.loss(INPUTS, TARGETS, NEGATIVES).item()
        mean, cov = encode(model, INPUTS)
        bpr_terms, pvn_terms = [], []
        for b in range(2):
            for i in range(MAX_LEN):
                if TARGETS[b, i] == 0:
                    continue
                pos_mean, pos_cov = model.item_gaussians(TARGETS[b, i])
                neg_mean, neg_cov = model.item_gaussians(NEGATIVES[b, i])
                d_pos = w2(mean[b, i], cov[b, i], pos_mean, pos_cov)
                d_neg = w2(mean[b, i], cov[b, i], neg_mean, neg_cov)
                d_pos_neg = w2(pos_mean, pos_cov, neg_mean, neg_cov)
                bpr_terms.append(-log_sigmoid(d_neg - d_pos))
                pvn_terms.append(max(d_pos - d_pos_neg, 0.0))
    assert len(bpr_terms) == 11
    bpr = sum(bpr_terms) / len(bpr_terms)
    pvn = sum(pvn_terms) / len(pvn_terms)
    assert pvn > 0.05  # the pvn term is active on this batch, so pvn_weight matters
    assert got == pytest.approx(bpr + pvn_weight * pvn, rel=1e-5)


def test_item_gaussians_use_elu_plus_one():
    model = build(seed=1)
    ids = torch.tensor([1, 5, 12])
    mean, cov = model.item_gaussians(ids)
    assert torch.equal(mean, model.item_mean.weight[ids])
    raw = model.item_cov.weight[ids].detach()
    expected = torch.tensor([[elu_plus_one(float(x)) for x in row] for row in raw])
    assert_close(cov.detach(), expected)
    assert (cov > 0).all()


def test_ce_loss_over_negative_distances():
    model = build(seed=2, loss="ce")
    with torch.no_grad():
        got = model.loss(INPUTS, TARGETS, NEGATIVES).item()
        mean, cov = encode(model, INPUTS)
        terms = []
        for b in range(2):
            for i in range(MAX_LEN):
                if TARGETS[b, i] == 0:
                    continue
                logits = []
                for n in range(1, NUM_ITEMS + 1):
                    item_mean, item_cov = model.item_gaussians(torch.tensor(n))
                    logits.append(-w2(mean[b, i], cov[b, i], item_mean, item_cov))
                top = max(logits)
                lse = top + math.log(sum(math.exp(x - top) for x in logits))
                terms.append(lse - logits[int(TARGETS[b, i]) - 1])
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-4)


# ---- (c) released-code option -------------------------------------------------------------


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_released_code_mean_skips_attention(num_layers):
    model = build(seed=3, num_layers=num_layers, stosa_released_code=True)
    with torch.no_grad():
        mean, cov = encode(model, IDS)
        embed_mean, embed_cov = model.embed(IDS)
    assert torch.equal(mean, embed_mean)
    assert (cov - embed_cov).abs().max().item() > 1e-2

    default = build(seed=3, num_layers=num_layers)
    with torch.no_grad():
        default_mean, default_cov = encode(default, IDS)
        default_embed_mean, _ = default.embed(IDS)
    assert torch.equal(default_embed_mean, embed_mean)  # same seed, same parameters
    valid = IDS > 0
    assert (default_mean - default_embed_mean)[valid].abs().amax(-1).min().item() > 1e-2
    # The covariance stream does not depend on the option for one layer (it never reads the
    # layer's mean); with more layers it does (slightly at init), since the attention weights
    # of later layers read the mean.
    if num_layers == 1:
        assert_close(default_cov, cov, rtol=0, atol=1e-6)
    else:
        assert (default_cov - cov).abs().max().item() > 1e-5


# ---- (d) attention weights ----------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS_BY_BACKBONE["stosa"])
def test_attention_rows_sum_to_one_on_valid_queries(mechanism):
    model = build(seed=5, mechanism=mechanism)
    for layer in model.attention_layers():
        layer.captured = []
    with torch.no_grad():
        encode(model, IDS)
    valid = (IDS > 0)[:, None, :].expand(3, 2, MAX_LEN)
    for layer in model.attention_layers():
        assert len(layer.captured) == 1
        attn, refined = layer.captured[0]
        assert attn.shape == refined.shape == (3, 2, MAX_LEN, MAX_LEN)
        sums = attn.sum(-1)
        assert_close(sums[valid], torch.ones(int(valid.sum())))
        assert sums[~valid].abs().max().item() == 0.0
        assert torch.triu(attn, diagonal=1).abs().max().item() == 0.0
        assert attn[0, :, :, :3].abs().max().item() == 0.0  # padding keys of row 0
        if mechanism != "value":  # the value mechanism's rows are not a softmax
            assert_close(refined.sum(-1)[valid], torch.ones(int(valid.sum())))
        if mechanism == "none":
            assert torch.equal(attn, refined)


def test_first_layer_attention_matches_loop_reference():
    """A of layer 1 from the embedding output: softmax over allowed keys of -W2 / sqrt(d)."""
    model = build(seed=7, num_layers=1)
    layer = model.attention_layers()[0]
    layer.captured = []
    with torch.no_grad():
        encode(model, IDS)
        attn = layer.captured[0][0]
        mean, cov = model.embed(IDS)
        q_mu, k_mu = layer.mean_qkv[0](mean), layer.mean_qkv[1](mean)
        q_s = torch.nn.functional.elu(layer.cov_qkv[0](cov)) + 1
        k_s = torch.nn.functional.elu(layer.cov_qkv[1](cov)) + 1
    size = D // 2
    for b in range(3):
        for h in range(2):
            cols = slice(h * size, (h + 1) * size)
            for i in range(MAX_LEN):
                if IDS[b, i] == 0:
                    continue
                keys = [j for j in range(i + 1) if IDS[b, j] > 0]
                scores = [
                    -w2(q_mu[b, i, cols], q_s[b, i, cols], k_mu[b, j, cols], k_s[b, j, cols])
                    / math.sqrt(size)
                    for j in keys
                ]
                top = max(scores)
                exps = [math.exp(s - top) for s in scores]
                for j, e in zip(keys, exps, strict=True):
                    assert float(attn[b, h, i, j]) == pytest.approx(e / sum(exps), abs=2e-5)


# ---- causality and determinism ------------------------------------------------------------


@pytest.mark.parametrize("released", [False, True])
@pytest.mark.parametrize("mechanism", MECHANISMS_BY_BACKBONE["stosa"])
def test_causality_by_perturbation(mechanism, released):
    model = build(
        seed=2,
        mechanism=mechanism,
        stosa_released_code=released,
        refine_per_head=mechanism == "value",
    )
    enlarge_refinement(model)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        base_mean, base_cov = encode(model, IDS)
        for t in range(MAX_LEN - 1):
            changed = IDS.clone()
            later = changed[:, t + 1 :]
            shift = torch.randint(1, NUM_ITEMS, later.shape, generator=generator)
            changed[:, t + 1 :] = (later - 1 + shift) % NUM_ITEMS + 1  # another item id
            assert (changed[:, t + 1 :] != IDS[:, t + 1 :]).all()
            mean, cov = encode(model, changed)
            for out, base in ((mean, base_mean), (cov, base_cov)):
                assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
                after = (out[:, t + 1 :] - base[:, t + 1 :]).abs().amax(-1)
                assert after.min().item() > 1e-4


@pytest.mark.parametrize("mechanism", MECHANISMS_BY_BACKBONE["stosa"])
def test_seeded_build_and_loss_are_bit_identical(mechanism):
    losses = []
    for _ in range(2):
        torch.manual_seed(321)
        model = build_model(
            config(mechanism=mechanism, dropout=0.2, attn_dropout=0.2, pvn_weight=0.1), NUM_ITEMS
        )
        model.train()
        torch.manual_seed(8)
        losses.append(model.loss(INPUTS, TARGETS, NEGATIVES))
    assert torch.equal(losses[0], losses[1])
    assert losses[0].ndim == 0 and math.isfinite(losses[0].item())
    torch.manual_seed(322)
    other = build_model(
        config(mechanism=mechanism, dropout=0.2, attn_dropout=0.2, pvn_weight=0.1), NUM_ITEMS
    )
    other.train()
    torch.manual_seed(8)
    assert not torch.equal(other.loss(INPUTS, TARGETS, NEGATIVES), losses[0])


def test_loss_backward_reaches_refinement_parameters():
    model = build(seed=11, mechanism="stochastic").train()
    model.loss(INPUTS, TARGETS, NEGATIVES).backward()
    for layer in model.attention_layers():
        for param in layer.refinement.parameters():
            assert param.grad is not None
            assert param.grad.abs().max().item() > 0
