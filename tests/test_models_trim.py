"""Skipping the leading all-padding columns of a batch changes no output and no loss."""

import pytest
import torch
from model_helpers import encode

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig
from awr.models.attention import wasserstein_distance_matrix
from awr.models.registry import build_model

PAIRS = [(b, m) for b, ms in MECHANISMS_BY_BACKBONE.items() for m in ms]


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("backbone,mechanism", PAIRS)
def test_trimmed_window_equals_full_window(backbone, mechanism, per_head):
    config = TrialConfig(
        backbone=backbone,
        mechanism=mechanism,
        max_len=12,
        hidden_size=16,
        num_heads=2,
        num_layers=2,
        refine_per_head=per_head,
    )
    torch.manual_seed(0)
    model = build_model(config, num_items=30).eval()
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 31, (4, 12), generator=generator)
    for row, pad in enumerate([5, 7, 9, 5]):  # at least 5 all-padding columns
        ids[row, :pad] = 0
    targets = torch.randint(1, 31, (4, 12), generator=generator).masked_fill(ids == 0, 0)
    negatives = torch.randint(1, 31, (4, 12), generator=generator).masked_fill(ids == 0, 0)
    outputs = {}
    for trim in (True, False):
        model.trim_padding = trim
        encoded = encode(model, ids)
        encoded = encoded if isinstance(encoded, tuple) else (encoded,)
        outputs[trim] = [e[ids > 0] for e in encoded]
        outputs[trim] += [model.score_all(ids), model.loss(ids, targets, negatives)[None]]
    for trimmed, full in zip(outputs[True], outputs[False], strict=True):
        torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("released", [False, True])
@pytest.mark.parametrize("backbone,mechanism", PAIRS)
def test_score_all_last_position_path_equals_full_encode(backbone, mechanism, released):
    """score_all computes only the last position in the final layer; compare with full encode."""
    config = TrialConfig(
        backbone=backbone,
        mechanism=mechanism,
        max_len=10,
        hidden_size=16,
        num_heads=2,
        num_layers=2,
        stosa_released_code=released,
    )
    torch.manual_seed(0)
    model = build_model(config, num_items=25).eval()
    ids = torch.randint(1, 26, (3, 10), generator=torch.Generator().manual_seed(2))
    ids[0, :4] = 0
    with torch.no_grad():
        if backbone == "sasrec":
            expected = encode(model, ids)[:, -1] @ model.item_embedding.weight.T
        else:
            mean, cov = encode(model, ids)
            item_mean, item_cov = model.item_gaussians_all()
            expected = -wasserstein_distance_matrix(mean[:, -1], cov[:, -1], item_mean, item_cov)
        torch.testing.assert_close(model.score_all(ids), expected, atol=1e-5, rtol=1e-5)


def test_init_follows_each_reference_code():
    torch.manual_seed(0)
    sasrec = build_model(TrialConfig(backbone="sasrec", hidden_size=64), num_items=2000)
    stosa = build_model(TrialConfig(backbone="stosa", hidden_size=64), num_items=2000)
    for weight, mean in ((sasrec.item_embedding.weight, 0.0), (stosa.item_mean.weight, 0.01)):
        assert float(weight.detach().mean()) == pytest.approx(mean, abs=1e-3)
        assert float(weight.detach().std()) == pytest.approx(0.02, abs=1e-3)
    assert float(stosa.layers[0].attention.mean_dense.bias.detach().abs().sum()) == 0.0
