"""Optional fast paths (bf16 autocast, torch.compile) against the plain fp32 path."""

import pytest

from awr.config import TrialConfig
from awr.trial import run_trial

BASE = TrialConfig(
    dataset="synthetic",
    hidden_size=32,
    max_len=20,
    num_heads=2,
    lr=5e-3,
    batch_size=64,
    max_epochs=8,
    patience=8,
    dropout=0.1,
    attn_dropout=0.1,
)


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "none"), ("stosa", "simple")])
def test_bf16_autocast_matches_fp32_within_tolerance(backbone, mechanism):
    plain = run_trial(BASE.replace(backbone=backbone, mechanism=mechanism), log=None)
    fast = run_trial(
        BASE.replace(backbone=backbone, mechanism=mechanism, precision="bf16"), log=None
    )
    # bf16 rounds activations to 8 mantissa bits: the losses drift apart, the learned rule not.
    for a, b in zip(plain.history, fast.history, strict=True):
        assert abs(a.train_loss - b.train_loss) <= 0.05 * abs(a.train_loss) + 0.02
    assert abs(plain.test["recall_1"] - fast.test["recall_1"]) <= 0.05
    assert fast.test["recall_1"] > 0.9


@pytest.mark.slow
def test_compiled_loss_matches_eager():
    # Without dropout: compiled kernels draw dropout masks from another random stream.
    config = BASE.replace(max_epochs=2, dropout=0.0, attn_dropout=0.0)
    plain = run_trial(config, log=None)
    compiled = run_trial(config.replace(compile=True), log=None)
    for a, b in zip(plain.history, compiled.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-3)
    assert compiled.test["ndcg_5"] == pytest.approx(plain.test["ndcg_5"], abs=1e-3)
