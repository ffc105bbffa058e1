"""Refinement mechanisms (awr/models/refine.py) against slow element-by-element references."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from awr.config import MECHANISMS, MECHANISMS_BY_BACKBONE, ConfigError, TrialConfig
from awr.models.attention import attention_mask
from awr.models.refine import REFINEMENTS, build_refinement, extra_parameters
from awr.models.registry import build_model, count_parameters

B, H, L = 2, 2, 5
IDS = torch.tensor([[0, 0, 3, 1, 4], [2, 7, 1, 8, 2]])  # row 0 left-padded


def causal_attention(seed: int):
    """A (B, H, L, L) post-softmax with causal + key-padding mask; padded rows zero."""
    generator = torch.Generator().manual_seed(seed)
    mask = attention_mask(IDS)
    query_mask = (IDS > 0)[:, None, :, None].to(torch.float64)
    scores = torch.randn(B, H, L, L, generator=generator, dtype=torch.float64) * 2
    attn = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    attn = torch.nan_to_num(attn, nan=0.0) * query_mask
    return attn, mask, query_mask


def make_module(name: str, per_head: bool, learned_mix: bool = False, seed: int = 0):
    module = build_refinement(name, L, H, per_head=per_head, learned_mix=learned_mix).double()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in module.parameters():
            # Large weights so that the refinement is far from uniform.
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float64))
    return module


# ---- slow references: plain Python lists and loops ----------------------------------------


def matrix_of(weight, h):
    w = (weight[h] if weight.dim() == 3 else weight).detach()
    return [[float(w[r, c]) for c in range(L)] for r in range(L)]


def rows_of(attn, b, h):
    return [[float(attn[b, h, i, j]) for j in range(L)] for i in range(L)]


def matmul(a, w):
    return [[sum(a[i][j] * w[j][k] for j in range(L)) for k in range(L)] for i in range(L)]


def allowed(mask, b, i, j) -> bool:
    return bool(mask[b, 0, i, j])


def softmax_row(values, keep):
    picked = [v for v, ok in zip(values, keep, strict=True) if ok]
    if not picked:
        return [0.0] * len(values)
    top = max(picked)
    exps = [math.exp(v - top) if ok else 0.0 for v, ok in zip(values, keep, strict=True)]
    total = sum(exps)
    return [e / total for e in exps]


def ref_simple_rows(a, w_q, w_k, mask, b):
    q = matmul(a, w_q)
    k = matmul(a, w_k)
    out = []
    for i in range(L):
        scores = [sum(q[i][m] * k[j][m] for m in range(L)) / math.sqrt(L) for j in range(L)]
        out.append(softmax_row(scores, [allowed(mask, b, i, j) for j in range(L)]))
    return out


def ref_stochastic_rows(a, w_mu, w_c, mask, b):
    mu = matmul(a, w_mu)
    pre = matmul(a, w_c)
    cov = [[(x if x > 0 else math.exp(x) - 1) + 1 for x in row] for row in pre]
    out = []
    for i in range(L):
        scores = []
        for j in range(L):
            w2 = sum(
                (mu[i][m] - mu[j][m]) ** 2 + (math.sqrt(cov[i][m]) - math.sqrt(cov[j][m])) ** 2
                for m in range(L)
            )
            scores.append(-w2 / math.sqrt(L))
        out.append(softmax_row(scores, [allowed(mask, b, i, j) for j in range(L)]))
    return out


def reference(name, module, attn, mask, query_mask):
    out = torch.zeros(B, H, L, L, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            a = rows_of(attn * query_mask, b, h)
            if name == "simple":
                rows = ref_simple_rows(
                    a, matrix_of(module.w_q, h), matrix_of(module.w_k, h), mask, b
                )
            elif name == "value":
                refined = ref_simple_rows(
                    a, matrix_of(module.w_q, h), matrix_of(module.w_k, h), mask, b
                )
                v = matmul(a, matrix_of(module.w_v, h))
                rows = [
                    [
                        sum(refined[i][j] * v[j][k] for j in range(L))
                        if allowed(mask, b, i, k)
                        else 0.0
                        for k in range(L)
                    ]
                    for i in range(L)
                ]
            elif name == "additive":
                refined = ref_simple_rows(
                    a, matrix_of(module.w_q, h), matrix_of(module.w_k, h), mask, b
                )
                if module.mix_logit is None:
                    mix = 0.5
                else:
                    mix = 1 / (1 + math.exp(-module.mix_logit.item()))
                rows = [
                    [mix * a[i][j] + (1 - mix) * refined[i][j] for j in range(L)] for i in range(L)
                ]
            elif name == "stochastic":
                rows = ref_stochastic_rows(
                    a, matrix_of(module.w_mu, h), matrix_of(module.w_cov, h), mask, b
                )
            else:
                raise AssertionError(name)
            for i in range(L):
                if float(query_mask[b, 0, i, 0]) == 0:
                    continue  # padded query rows stay zero
                for j in range(L):
                    out[b, h, i, j] = rows[i][j]
    return out


CASES = [
    ("simple", False),
    ("value", False),
    ("additive", False),
    ("additive", True),
    ("stochastic", False),
]


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize(("name", "learned_mix"), CASES)
def test_mechanism_matches_loop_reference(name, learned_mix, per_head):
    attn, mask, query_mask = causal_attention(seed=7)
    module = make_module(name, per_head, learned_mix, seed=3)
    expected_shape = (H, L, L) if per_head else (L, L)
    for param_name in REFINEMENTS[name].matrices:
        assert getattr(module, param_name).shape == expected_shape
    if learned_mix:
        with torch.no_grad():
            module.mix_logit.fill_(0.8)  # mix = sigmoid(0.8) ~ 0.69
    got = module(attn, mask, query_mask)
    expected = reference(name, module, attn, mask, query_mask)
    assert got.shape == (B, H, L, L)
    assert_close(got, expected, rtol=1e-9, atol=1e-12)
    # The refinement is not the identity: A' differs from A.
    assert (got - attn).abs().max().item() > 1e-2
    # Padded query rows and entries above the diagonal are zero.
    assert got[0, :, :2].abs().max().item() == 0.0
    assert got.masked_select(~mask.expand_as(got)).abs().max().item() == 0.0
    if per_head:
        # Different heads use different matrices: giving head 1 head 0's A gives a different A'.
        same = attn.clone()
        same[:, 1] = same[:, 0]
        out = module(same, mask, query_mask)
        assert (out[:, 0] - out[:, 1]).abs().max().item() > 1e-3


def test_refined_rows_sum_to_one_for_softmax_mechanisms():
    attn, mask, query_mask = causal_attention(seed=5)
    for name, learned in [
        ("simple", False),
        ("additive", False),
        ("additive", True),
        ("stochastic", False),
    ]:
        got = make_module(name, per_head=False, learned_mix=learned)(attn, mask, query_mask)
        sums = got.sum(-1)  # (B, H, L)
        valid = (IDS > 0)[:, None, :].expand_as(sums)
        assert_close(sums[valid], torch.ones(int(valid.sum()), dtype=torch.float64))
        assert sums[~valid].abs().max().item() == 0.0


def test_default_init_is_normal_002():
    torch.manual_seed(0)
    module = build_refinement("value", 40, 2, per_head=True)
    weights = torch.cat([p.flatten() for p in module.parameters()])
    assert weights.numel() == 3 * 2 * 40 * 40
    assert abs(weights.mean().item()) < 0.002
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    fixed = build_refinement("additive", 4, 2, learned_mix=False)
    assert fixed.mix_logit is None
    learned = build_refinement("additive", 4, 2, learned_mix=True)
    assert learned.mix_logit.item() == 0.0  # sigmoid(0) = 0.5, the fixed default


def test_learned_mix_at_init_equals_fixed_mix():
    attn, mask, query_mask = causal_attention(seed=9)
    fixed = make_module("additive", False, learned_mix=False, seed=4)
    learned = make_module("additive", False, learned_mix=True, seed=4)
    with torch.no_grad():
        learned.w_q.copy_(fixed.w_q)
        learned.w_k.copy_(fixed.w_k)
        learned.mix_logit.zero_()
    assert_close(learned(attn, mask, query_mask), fixed(attn, mask, query_mask))


# ---- parameter counts ---------------------------------------------------------------------

K_BY_SPEC = {"simple": 2, "value": 3, "additive": 2, "stochastic": 2}


def small_config(**changes):
    base = dict(max_len=8, hidden_size=16, num_heads=2, dropout=0.0, attn_dropout=0.0)
    base.update(changes)
    return TrialConfig(**base)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("backbone", ["sasrec", "stosa"])
def test_extra_parameter_counts(backbone, num_layers):
    max_len, heads = 8, 2
    base = count_parameters(
        build_model(small_config(backbone=backbone, num_layers=num_layers), num_items=20)
    )
    checked = 0
    for mechanism in MECHANISMS_BY_BACKBONE[backbone]:
        if mechanism == "none":
            continue
        mixes = ["fixed", "learned"] if mechanism == "additive" else ["fixed"]
        for mix in mixes:
            for per_head in (False, True):
                config = small_config(
                    backbone=backbone,
                    num_layers=num_layers,
                    mechanism=mechanism,
                    additive_mix=mix,
                    refine_per_head=per_head,
                )
                extra = count_parameters(build_model(config, num_items=20)) - base
                formula = extra_parameters(mechanism, max_len, num_layers, heads, per_head)
                by_spec = (
                    K_BY_SPEC[mechanism] * max_len**2 * num_layers * (heads if per_head else 1)
                )
                assert formula == by_spec
                mix_params = num_layers if mix == "learned" else 0  # one scalar per layer
                assert extra == formula + mix_params, (mechanism, mix, per_head)
                checked += 1
    assert checked == (10 if backbone == "stosa" else 8)


def test_extra_parameters_formula_values():
    assert extra_parameters("simple", 200, 1) == 2 * 200 * 200
    assert extra_parameters("value", 50, 2) == 3 * 50 * 50 * 2
    assert extra_parameters("value", 50, 2, num_heads=4, per_head=True) == 3 * 50 * 50 * 2 * 4
    assert extra_parameters("value", 50, 2, num_heads=4, per_head=False) == 3 * 50 * 50 * 2
    assert extra_parameters("none", 50, 2) == 0


# ---- configuration errors -----------------------------------------------------------------


def test_unknown_mechanism_lists_valid_names():
    with pytest.raises(ConfigError) as info:  # the config checks it; build_refinement trusts it
        TrialConfig(mechanism="bogus")
    message = str(info.value)
    assert "bogus" in message
    for name in MECHANISMS:
        assert name in message


def test_stochastic_on_sasrec_is_config_error():
    with pytest.raises(ConfigError, match="stochastic") as info:
        TrialConfig(backbone="sasrec", mechanism="stochastic")
    assert "none, simple, value, additive" in str(info.value)
    with pytest.raises(ConfigError):
        TrialConfig(mechanism="bogus")
    # The registry checks again, for a config that bypassed validation.
    config = TrialConfig(backbone="stosa", mechanism="stochastic", max_len=8, hidden_size=16)
    object.__setattr__(config, "backbone", "sasrec")
    with pytest.raises(ConfigError, match="stochastic"):
        build_model(config, num_items=5)
