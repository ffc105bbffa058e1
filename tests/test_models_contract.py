"""The model contract (awr/models/contract.py): both backbones are Recommenders, capture and
the padding trim are switched by context managers that restore the model, and the fused
kernel runs only where the layer is built with `fused`."""

from __future__ import annotations

from functools import partial
from unittest import mock

import pytest
import torch
from torch.nn import functional as F

from awr.config import TrialConfig
from awr.models.attention import dot_product_scores
from awr.models.contract import AttentionLayer, Recommender
from awr.models.refine import build_refinement
from awr.models.registry import build_model
from awr.models.sasrec import SASRec

L = 6
IDS = torch.tensor([[0, 0, 0, 3, 1, 4], [0, 0, 7, 1, 8, 2]])  # 2 columns padding in both rows


def config(backbone: str, mechanism: str = "simple") -> TrialConfig:
    return TrialConfig(
        backbone=backbone, mechanism=mechanism, max_len=L, hidden_size=8, num_heads=2, num_layers=2
    )


@pytest.mark.parametrize("backbone", ["sasrec", "stosa"])
def test_capture_records_each_pass_in_full_windows_and_restores_the_model(backbone):
    torch.manual_seed(0)
    model = build_model(config(backbone), num_items=10).eval()
    assert isinstance(model, Recommender)
    assert all(isinstance(layer, AttentionLayer) for layer in model.attention_layers())
    with torch.no_grad():
        with model.capturing() as maps:
            model.score_all(IDS)  # trimmed: windows of the last 4 positions
            with model.untrimmed():
                assert not model.trim_padding
                model.score_all(IDS)
        assert model.trim_padding
        assert [len(records) for records in maps] == [2, 2]
        for records in maps:
            (attn, refined), (full_attn, full_refined) = records
            assert attn.shape == refined.shape == (2, 2, L - 2, L - 2)
            assert full_attn.shape == full_refined.shape == (2, 2, L, L)
            torch.testing.assert_close(full_attn[..., 2:, 2:], attn)
            torch.testing.assert_close(full_refined[..., 2:, 2:], refined)
        assert all(layer.captured is None for layer in model.attention_layers())
        with pytest.raises(RuntimeError), model.untrimmed(), model.capturing():
            raise RuntimeError
    assert model.trim_padding
    assert all(layer.captured is None for layer in model.attention_layers())


def test_only_fused_layers_call_the_fused_kernel():
    cfg = config("sasrec", "none")
    torch.manual_seed(0)
    fused = build_model(cfg, num_items=10).eval()
    torch.manual_seed(0)
    factory = partial(build_refinement, "none", L, 2)
    explicit = SASRec(cfg, 10, factory, dot_product_scores).eval()  # fused defaults to False
    kernel = F.scaled_dot_product_attention
    with torch.no_grad(), mock.patch.object(F, "scaled_dot_product_attention", wraps=kernel) as spy:
        expected = explicit.score_all(IDS)
        assert spy.call_count == 0
        got = fused.score_all(IDS)
        assert spy.call_count == 2  # once per layer
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
