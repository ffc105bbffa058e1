"""SASRec (awr/models/sasrec.py): fused vs explicit path, an independent reference forward,
causality by perturbation, seeded determinism and the losses by hand."""

from __future__ import annotations

import math

import pytest
import torch
from model_helpers import encode
from torch.nn import functional as F
from torch.testing import assert_close

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig
from awr.models.registry import build_model

NUM_ITEMS = 15
MAX_LEN = 8
IDS = torch.tensor(
    [
        [0, 0, 0, 4, 7, 2, 9, 1],
        [0, 3, 5, 5, 8, 2, 6, 10],
        [1, 2, 3, 4, 5, 6, 7, 8],
    ]
)


def config(**changes) -> TrialConfig:
    base = dict(
        backbone="sasrec",
        max_len=MAX_LEN,
        hidden_size=16,
        num_heads=2,
        num_layers=2,
        dropout=0.0,
        attn_dropout=0.0,
    )
    base.update(changes)
    return TrialConfig(**base)


def build(seed: int = 0, **changes):
    torch.manual_seed(seed)
    model = build_model(config(**changes), NUM_ITEMS)
    return model.eval()


def enlarge_refinement(model, seed: int = 1) -> None:
    """Refinement matrices at std 1 instead of 0.02 so that they change the output a lot."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.attention_layers():
            for param in layer.refinement.parameters():
                param.copy_(torch.randn(param.shape, generator=generator))


# ---- (a) fused kernel == explicit path ----------------------------------------------------


def test_fused_path_equals_explicit_path(monkeypatch):
    model = build(seed=3)
    calls = []
    original = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        fused = encode(model, IDS)
        assert len(calls) == 2  # the fused kernel ran once per layer
        for layer in model.attention_layers():
            layer.captured = []
        explicit = encode(model, IDS)
        assert len(calls) == 2  # ... and not on the explicit path
    for layer in model.attention_layers():
        assert len(layer.captured) == 1
        attn, refined = layer.captured[0]
        assert attn.shape == (3, 2, MAX_LEN, MAX_LEN)
        assert torch.equal(attn, refined)  # mechanism none: R = A
    assert fused.shape == (3, MAX_LEN, 16)
    assert_close(fused, explicit, rtol=0, atol=1e-5)


# ---- (b) mechanism none == an independent plain SASRec ------------------------------------


def layer_norm(x, norm):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-12) * norm.weight.double() + norm.bias.double()


def linear(x, layer):
    return x @ layer.weight.double().T + layer.bias.double()


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def reference_sasrec(model, ids):
    """Plain SASRec forward in float64, one sequence and one head at a time."""
    batch, length = ids.shape
    d = model.config.hidden_size
    heads = model.config.num_heads
    size = d // heads
    item = model.item_embedding.weight.detach().double()
    pos = model.position_embedding.weight.detach().double()
    outputs = []
    with torch.no_grad():
        for b in range(batch):
            x = item[ids[b]] + pos[:length]
            x = layer_norm(x, model.embedding_norm)
            for block in model.blocks:
                att = block.attention
                q, k, v = linear(x, att.query), linear(x, att.key), linear(x, att.value)
                context = torch.zeros(length, d, dtype=torch.float64)
                for h in range(heads):
                    cols = slice(h * size, (h + 1) * size)
                    for i in range(length):
                        keys = [j for j in range(i + 1) if ids[b, j] > 0]
                        if not keys or ids[b, i] == 0:
                            continue
                        scores = torch.stack(
                            [q[i, cols] @ k[j, cols] / math.sqrt(size) for j in keys]
                        )
                        weights = torch.softmax(scores, dim=0)
                        for w, j in zip(weights, keys, strict=True):
                            context[i, cols] += w * v[j, cols]
                x = layer_norm(x + linear(context, att.dense), att.norm)
                ffn = block.ffn
                x = layer_norm(x + linear(gelu(linear(x, ffn.inner)), ffn.outer), ffn.norm)
            outputs.append(x)
    return torch.stack(outputs)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_none_matches_plain_sasrec_reference(num_layers):
    model = build(seed=5, num_layers=num_layers)
    with torch.no_grad():
        got = encode(model, IDS)
    expected = reference_sasrec(model, IDS)
    valid = IDS > 0
    assert_close(got[valid].double(), expected[valid], rtol=0, atol=1e-5)


def test_reference_detects_a_wrong_scale():
    """The reference comparison is sensitive: a model whose query weights change disagrees."""
    model = build(seed=5)
    expected = reference_sasrec(model, IDS)
    with torch.no_grad():
        model.blocks[0].attention.query.weight.mul_(10.0)
        got = encode(model, IDS)
    valid = IDS > 0
    assert (got[valid].double() - expected[valid]).abs().max().item() > 1e-3


# ---- (c) causality by perturbation --------------------------------------------------------


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("mechanism", MECHANISMS_BY_BACKBONE["sasrec"])
def test_causality_by_perturbation(mechanism, per_head):
    model = build(seed=2, mechanism=mechanism, refine_per_head=per_head)
    enlarge_refinement(model)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        base = encode(model, IDS)
        for t in range(MAX_LEN - 1):
            changed = IDS.clone()
            later = changed[:, t + 1 :]
            shift = torch.randint(1, NUM_ITEMS, later.shape, generator=generator)
            changed[:, t + 1 :] = (later - 1 + shift) % NUM_ITEMS + 1  # another item id
            assert (changed[:, t + 1 :] != IDS[:, t + 1 :]).all()
            out = encode(model, changed)
            assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
            after = (out[:, t + 1 :] - base[:, t + 1 :]).abs().amax(-1)  # (B, L - t - 1)
            assert after.min().item() > 1e-4


# ---- (d) seeded determinism ---------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS_BY_BACKBONE["sasrec"])
def test_seeded_build_and_loss_are_bit_identical(mechanism):
    targets = torch.cat([IDS[:, 1:], torch.tensor([[3], [4], [9]])], dim=1) * (IDS > 0)
    negatives = (targets + 5) % NUM_ITEMS + 1
    losses = []
    for _ in range(2):
        torch.manual_seed(123)
        model = build_model(config(mechanism=mechanism, dropout=0.2, attn_dropout=0.2), NUM_ITEMS)
        model.train()
        torch.manual_seed(7)
        losses.append(model.loss(IDS, targets, negatives))
    assert torch.equal(losses[0], losses[1])
    assert losses[0].ndim == 0 and math.isfinite(losses[0].item())
    torch.manual_seed(124)
    other = build_model(config(mechanism=mechanism, dropout=0.2, attn_dropout=0.2), NUM_ITEMS)
    other.train()
    torch.manual_seed(7)
    assert not torch.equal(other.loss(IDS, targets, negatives), losses[0])


# ---- (e) losses by hand -------------------------------------------------------------------

TARGETS = torch.tensor([[0, 0, 0, 7, 2, 9, 1, 3], [0, 5, 5, 8, 2, 6, 10, 0]])
NEGATIVES = torch.tensor([[0, 0, 0, 11, 12, 13, 14, 15], [0, 1, 2, 3, 4, 5, 6, 0]])
INPUTS = IDS[:2]


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bce_loss_by_hand():
    model = build(seed=8, mechanism="simple")
    with torch.no_grad():
        hidden = encode(model, INPUTS)
        got = model.loss(INPUTS, TARGETS, NEGATIVES).item()
    emb = model.item_embedding.weight.detach()
    terms = []
    for b in range(2):
        for i in range(MAX_LEN):
            if TARGETS[b, i] == 0:
                continue
            pos = sum(float(hidden[b, i, k]) * float(emb[TARGETS[b, i], k]) for k in range(16))
            neg = sum(float(hidden[b, i, k]) * float(emb[NEGATIVES[b, i], k]) for k in range(16))
            # -log s(pos) - log(1 - s(neg))
            terms.append(-log_sigmoid(pos) - math.log(1 - 1 / (1 + math.exp(-neg))))
    assert len(terms) == 5 + 6
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_ce_loss_equals_cross_entropy_over_items():
    model = build(seed=9, loss="ce", mechanism="value")
    with torch.no_grad():
        hidden = encode(model, INPUTS)
        got = model.loss(INPUTS, TARGETS, NEGATIVES)
    valid = TARGETS > 0
    logits = hidden[valid] @ model.item_embedding.weight.detach()[1:].T  # items 1..N
    expected = F.cross_entropy(logits, TARGETS[valid] - 1)
    assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # By hand for one row: log-sum-exp over items 1..N minus the target's logit.
    row = logits[0].double()
    by_hand = torch.logsumexp(row, 0) - row[TARGETS[valid][0] - 1]
    assert by_hand.item() > 0
    assert math.isclose(
        F.cross_entropy(logits[:1], TARGETS[valid][:1] - 1).item(), by_hand.item(), rel_tol=1e-6
    )


def test_score_all_is_last_position_dot_products():
    model = build(seed=10, mechanism="additive", additive_mix="learned")
    with torch.no_grad():
        scores = model.score_all(IDS)
        last = encode(model, IDS)[:, -1]
    emb = model.item_embedding.weight.detach()
    assert scores.shape == (3, NUM_ITEMS + 1)
    for b in range(3):
        for n in range(NUM_ITEMS + 1):
            expected = sum(float(last[b, k]) * float(emb[n, k]) for k in range(16))
            assert float(scores[b, n]) == pytest.approx(expected, abs=1e-6)


def test_init_statistics():
    model = build(seed=0, max_len=MAX_LEN, hidden_size=64, num_layers=1)
    weight = model.blocks[0].ffn.inner.weight
    assert abs(weight.mean().item()) < 0.003
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].ffn.inner.bias.abs().max().item() == 0.0
    assert torch.equal(model.embedding_norm.weight, torch.ones(64))
    assert model.blocks[0].attention.norm.eps == 1e-12
