"""CUDA against CPU (marker `gpu`, skipped without CUDA; run by `python -m awr.bench gpu`):
every backbone x mechanism pair's loss, gradients and scores; the fast evaluation path; a
trainer step (fused Adam, sparse embedding gradients); bf16 autocast and a compiled loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from awr.config import MECHANISMS_BY_BACKBONE, TrialConfig
from awr.data.batches import build_eval_tensors, build_train_tensors
from awr.data.synthetic import random_sequences
from awr.eval.evaluate import user_ranks
from awr.eval.metrics import metrics_from_ranks
from awr.models.registry import build_model
from awr.train.trainer import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

PAIRS = [(b, m) for b, ms in MECHANISMS_BY_BACKBONE.items() for m in ms]
NUM_ITEMS = 300
MAX_LEN = 20
CUDA = torch.device("cuda")


def config(backbone: str, mechanism: str, **changes) -> TrialConfig:
    base = dict(
        backbone=backbone, mechanism=mechanism, max_len=MAX_LEN, hidden_size=32, num_heads=2,
        num_layers=2, dropout=0.0, attn_dropout=0.0, batch_size=64,
    )  # fmt: skip
    return TrialConfig(**{**base, **changes})


def data():
    lengths = np.random.default_rng(0).integers(3, 40, size=200)
    return random_sequences("gpu", lengths, NUM_ITEMS, seed=1, source="test")


def batch(config: TrialConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    train = build_train_tensors(data(), config.max_len, "cpu")
    generator = torch.Generator().manual_seed(2)
    negatives = torch.randint(1, NUM_ITEMS + 1, train.targets.shape, generator=generator)
    rows = slice(0, 64)
    negatives = negatives.masked_fill(train.targets == 0, 0)
    return train.inputs[rows], train.targets[rows], negatives[rows]


def pair_models(config: TrialConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    cpu = build_model(config, NUM_ITEMS)
    return cpu, copy.deepcopy(cpu).to(CUDA)


@pytest.mark.parametrize("loss", ["bce", "ce"])
@pytest.mark.parametrize("backbone,mechanism", PAIRS)
def test_loss_gradients_and_scores_on_cuda_equal_cpu(backbone, mechanism, loss):
    cfg = config(backbone, mechanism, loss=loss)
    cpu, gpu = pair_models(cfg)
    inputs, targets, negatives = batch(cfg)
    cpu_loss = cpu.loss(inputs, targets, negatives)
    gpu_loss = gpu.loss(inputs.to(CUDA), targets.to(CUDA), negatives.to(CUDA))
    torch.testing.assert_close(gpu_loss.cpu(), cpu_loss, rtol=1e-4, atol=1e-6)
    cpu_loss.backward()
    gpu_loss.backward()
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        if p_cpu.grad is not None:
            torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-6, msg=name)
    with torch.no_grad():
        cpu.eval()
        gpu.eval()
        scores = gpu.score_all(inputs.to(CUDA)).cpu()
        torch.testing.assert_close(scores, cpu.score_all(inputs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "simple"), ("stosa", "stochastic")])
def test_evaluation_on_cuda_equals_cpu(backbone, mechanism):
    cfg = config(backbone, mechanism)
    cpu, gpu = pair_models(cfg)
    tensors = build_eval_tensors(data(), cfg.max_len, "test")
    cuda_tensors = build_eval_tensors(data(), cfg.max_len, "test", CUDA)
    cpu_ranks = user_ranks(cpu, tensors, 64)
    gpu_ranks = user_ranks(gpu, cuda_tensors, 64).cpu()
    assert float((cpu_ranks == gpu_ranks).float().mean()) >= 0.98  # near-ties may flip
    cpu_metrics, gpu_metrics = metrics_from_ranks(cpu_ranks), metrics_from_ranks(gpu_ranks)
    for name, value in cpu_metrics.items():
        assert gpu_metrics[name] == pytest.approx(value, abs=0.01), name


@pytest.mark.parametrize("backbone", ["sasrec", "stosa"])
def test_a_trainer_step_on_cuda_equals_cpu(backbone):
    """Fused Adam and sparse embedding gradients on both devices, 4 length groups."""
    cfg = config(backbone, "none", length_groups=4)
    sequences = data()
    params = {}
    for device in ("cpu", "cuda"):
        train = build_train_tensors(sequences, cfg.max_len, device)
        valid = build_eval_tensors(sequences, cfg.max_len, "valid", device)
        torch.manual_seed(0)
        model = build_model(cfg.replace(device=device), NUM_ITEMS).to(device)
        trainer = Trainer(model, cfg.replace(device=device), train, valid, NUM_ITEMS)
        _, targets, negatives = batch(cfg)
        model.train()
        for _ in range(3):
            trainer.optimizer.zero_grad(set_to_none=True)
            trainer.backward(torch.arange(64, device=device), negatives.to(device))
            trainer.optimizer.step()
        params[device] = {name: p.detach().cpu() for name, p in model.named_parameters()}
    for name, value in params["cpu"].items():
        torch.testing.assert_close(params["cuda"][name], value, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "none"), ("stosa", "simple")])
def test_bf16_autocast_on_cuda_is_close_to_fp32(backbone, mechanism):
    cfg = config(backbone, mechanism)
    _, gpu = pair_models(cfg)
    inputs, targets, negatives = (t.to(CUDA) for t in batch(cfg))
    plain = float(gpu.loss(inputs, targets, negatives))
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        fast = float(gpu.loss(inputs, targets, negatives))
    assert fast == pytest.approx(plain, rel=0.05)


def test_compiled_loss_on_cuda_matches_eager():
    cfg = config("sasrec", "simple", num_layers=1)
    _, gpu = pair_models(cfg)
    inputs, targets, negatives = (t.to(CUDA) for t in batch(cfg))
    eager = gpu.loss(inputs, targets, negatives)
    compiled = torch.compile(gpu.loss)(inputs, targets, negatives)
    torch.testing.assert_close(compiled, eager, rtol=1e-3, atol=1e-5)
