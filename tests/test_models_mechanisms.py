"""The refinement mechanisms with their L x L matrices far from the init scale.

At init (normal(0, 0.02)) the refined scores are nearly zero, so A' is nearly uniform whatever
the matrices hold, and a wrong slice or scale of them changes the outputs by less than any
tolerance. Here the matrices are at std 1 (or trained a few steps with a large rate), A' is far
from uniform, and three properties are checked exactly (float64): a window over the last l
positions refines as the full L computation restricted to it (the slices W[-l:] and the scale
sqrt(L)); trimmed and full models give the same scores and losses; length groups, which trim
each part differently, give the one-batch gradient.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig
from awr.data.batches import TrainTensors
from awr.models.attention import attention_mask, masked_softmax
from awr.models.refine import build_refinement
from awr.models.registry import build_model
from awr.train.trainer import Trainer

B, H, L, NUM_ITEMS = 4, 2, 8, 20
REFINING = [m for m in MECHANISMS_BY_BACKBONE["stosa"] if m != "none"]
PAIRS = [(b, m) for b, ms in MECHANISMS_BY_BACKBONE.items() for m in ms if m != "none"]


def padded_ids(pads: list[int], seed: int = 0) -> torch.Tensor:
    """(len(pads), L) ids in 1..NUM_ITEMS with pads[r] leading zeros in row r."""
    ids = torch.randint(
        1, NUM_ITEMS + 1, (len(pads), L), generator=torch.Generator().manual_seed(seed)
    )
    for row, pad in enumerate(pads):
        ids[row, :pad] = 0
    return ids


def scale_matrices(module: torch.nn.Module, std: float = 1.0, seed: int = 1) -> None:
    """Every refinement matrix of `module` (a Refinement or a model) at normal(0, std)."""
    generator = torch.Generator().manual_seed(seed)
    refinements = [m for m in module.modules() if hasattr(m, "matrices")]
    with torch.no_grad():
        for refinement in refinements:
            for name in refinement.matrices:
                param = getattr(refinement, name)
                param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * std)


def refinement_inputs(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A (B, H, L, L) from random scores under the causal + padding mask, the mask, query mask."""
    mask = attention_mask(ids)
    query_mask = (ids > 0)[:, None, :, None].double()
    scores = torch.randn(ids.shape[0], H, L, L, generator=torch.Generator().manual_seed(3)) * 2
    return masked_softmax(scores.double(), mask) * query_mask, mask, query_mask


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("name", REFINING)
def test_a_window_refines_as_the_full_computation_restricted_to_it(name, per_head):
    skipped = 3
    ids = padded_ids([3, 5, 4, 3])  # the first 3 columns are padding in every row
    attn, mask, query_mask = refinement_inputs(ids)
    module = build_refinement(name, L, H, per_head=per_head).double()
    scale_matrices(module)
    keep = slice(skipped, None)
    with torch.no_grad():
        full = module(attn, mask, query_mask)  # (B, H, L, L)
        window = module(attn[..., keep, keep], mask[..., keep, keep], query_mask[:, :, keep])
    assert_close(window, full[..., keep, keep], rtol=1e-9, atol=1e-12)
    assert full[..., :skipped].abs().max() == 0.0  # padded keys get no weight
    # far from uniform and from A: the matrices matter in this comparison
    valid = ids[:, None, :, None].expand(B, H, L, L) > 0
    causal = mask.expand(B, H, L, L) & valid
    uniform = causal / causal.sum(-1, keepdim=True).clamp_min(1)
    assert float((full - uniform)[causal].abs().max()) > 0.2
    assert float((full - attn)[causal].abs().max()) > 0.2


def tiny_model(backbone: str, mechanism: str, **changes) -> torch.nn.Module:
    config = TrialConfig(
        backbone=backbone, mechanism=mechanism, max_len=L, hidden_size=8, num_heads=H,
        num_layers=2, dropout=0.0, attn_dropout=0.0, **changes,
    )  # fmt: skip
    torch.manual_seed(0)
    return build_model(config, NUM_ITEMS).double()


def outputs(model, ids, targets, negatives, trim: bool) -> list[torch.Tensor]:
    model.trim_padding = trim
    return [model.score_all(ids), model.loss(ids, targets, negatives)[None]]


def assert_trim_changes_nothing(model, ids: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(4)
    targets = torch.randint(1, NUM_ITEMS + 1, ids.shape, generator=generator) * (ids > 0)
    negatives = torch.randint(1, NUM_ITEMS + 1, ids.shape, generator=generator) * (ids > 0)
    with torch.no_grad():
        trimmed = outputs(model.eval(), ids, targets, negatives, trim=True)
        full = outputs(model, ids, targets, negatives, trim=False)
    for got, expected in zip(trimmed, full, strict=True):
        assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backbone,mechanism", PAIRS)
def test_trimmed_equals_full_with_large_matrices(backbone, mechanism):
    model = tiny_model(backbone, mechanism, refine_per_head=backbone == "stosa")
    scale_matrices(model)
    assert_trim_changes_nothing(model, padded_ids([4, 6, 5, 4]))


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "simple"), ("stosa", "stochastic")])
def test_trimmed_equals_full_after_training_steps(backbone, mechanism):
    """From the init, a few Adam steps at a large rate grow the matrices far from 0.02."""
    model = tiny_model(backbone, mechanism).train()
    ids = padded_ids([4, 6, 5, 4], seed=5)
    targets = torch.roll(ids, -1, 1) * (ids > 0)
    negatives = (targets % NUM_ITEMS + 1) * (ids > 0)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.2)
    for _ in range(8):
        optimizer.zero_grad()
        model.loss(ids, targets, negatives).backward()
        optimizer.step()
    trained = {n: p.detach() for n, p in model.named_parameters() if "refinement.w_" in n}
    moved = [float((trained[n] - initial[n]).abs().max()) for n in trained]
    assert trained and min(moved) > 0.2  # 10x the init scale (rows of kept positions)
    assert_trim_changes_nothing(model, padded_ids([4, 6, 5, 4], seed=6))


def train_tensors(lengths: list[int], seed: int = 7) -> TrainTensors:
    """Rows with `lengths` valid positions each (left-padded), random targets."""
    generator = torch.Generator().manual_seed(seed)
    ids = padded_ids([L - n for n in lengths], seed)
    targets = torch.randint(1, NUM_ITEMS + 1, ids.shape, generator=generator) * (ids > 0)
    rows = torch.arange(len(lengths))
    return TrainTensors(ids, targets, rows, torch.zeros(0, dtype=torch.long), NUM_ITEMS)


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "value"), ("stosa", "stochastic")])
def test_length_groups_give_the_one_batch_gradient_with_large_matrices(backbone, mechanism):
    """One row fills the window, so the whole batch trims nothing, while the parts of short
    rows trim most of it: wrong slices of the matrices would change only the parts."""
    train = train_tensors([8, 2, 3, 1, 5, 2, 7, 1])
    negatives = (train.targets % NUM_ITEMS + 1) * (train.targets > 0)
    rows = torch.arange(train.inputs.shape[0])
    grads = {}
    for groups in (1, 4):
        model = tiny_model(backbone, mechanism, batch_size=8, length_groups=groups)
        scale_matrices(model)
        trainer = Trainer(model.train(), model.config, train, None, NUM_ITEMS)
        assert trainer.length_groups == groups
        trainer.backward(rows, negatives)
        grads[groups] = {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }
    assert grads[1].keys() == grads[4].keys()
    for name, grad in grads[1].items():
        # the parts' weights are float32 ratios: agreement to ~1e-8 of the largest gradient
        assert_close(grads[4][name], grad, rtol=1e-6, atol=1e-8, msg=name)
