"""The optimizer step's fast paths against the plain ones: fused Adam against torch's loop
implementation, sparse embedding gradients (made dense each step) against dense lookups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from awr.config import TrialConfig
from awr.data.batches import build_eval_tensors, build_train_tensors
from awr.data.synthetic import random_sequences
from awr.models.registry import build_model
from awr.train.optim import SparseEmbeddingGrads, adam
from awr.train.trainer import Trainer

NUM_ITEMS = 40


def test_fused_adam_follows_the_loop_implementation():
    generator = torch.Generator().manual_seed(0)
    shapes = [(41, 8), (8,), (3, 8, 8)]
    start = [torch.randn(shape, generator=generator) for shape in shapes]
    runs = {}
    for name in ("fused", "loop"):
        params = [nn.Parameter(p.clone()) for p in start]
        if name == "fused":
            optimizer = adam(params, lr=1e-2, weight_decay=0.1, device=torch.device("cpu"))
            assert optimizer.param_groups[0]["fused"]
        else:
            optimizer = torch.optim.Adam(params, lr=1e-2, weight_decay=0.1, foreach=False)
        grads = torch.Generator().manual_seed(1)
        for _ in range(20):
            for p in params:
                p.grad = torch.randn(p.shape, generator=grads)
            optimizer.step()
        runs[name] = params
    for fused, loop in zip(runs["fused"], runs["loop"], strict=True):
        torch.testing.assert_close(fused, loop, rtol=1e-6, atol=1e-7)
    assert not torch.equal(runs["fused"][0], start[0])


def step_gradients(config: TrialConfig, sparse: bool) -> dict[str, torch.Tensor]:
    lengths = np.random.default_rng(0).integers(3, 40, size=48)
    data = random_sequences("optim", lengths, NUM_ITEMS, seed=1, source="test")
    train = build_train_tensors(data, config.max_len, "cpu")
    valid = build_eval_tensors(data, config.max_len, "valid")
    torch.manual_seed(0)
    model = build_model(config, data.num_items)
    trainer = Trainer(model, config, train, valid, data.num_items)
    grads = trainer.sparse_grads = CountingGrads(model, enabled=sparse)
    model.train()
    negatives = torch.randint(1, NUM_ITEMS + 1, train.targets.shape, generator=torch.Generator())
    negatives = negatives.masked_fill(train.targets == 0, 0)
    trainer.backward(torch.arange(train.inputs.shape[0]), negatives)
    assert not any(m.sparse for m in model.modules() if isinstance(m, nn.Embedding))
    # SASRec has 2 tables (items, positions), STOSA 4 (a mean and a covariance table each);
    # BCE looks every table up (sparse), CE also multiplies by the item tables (dense)
    tables, item_tables = (2, 1) if config.backbone == "sasrec" else (4, 2)
    sparse_tables = tables if config.loss == "bce" else tables - item_tables
    assert grads.densified == (sparse_tables if sparse else 0)
    return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


class CountingGrads(SparseEmbeddingGrads):
    densified = 0

    def densify(self) -> int:
        self.densified = super().densify()
        return self.densified


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize(
    "backbone,mechanism,loss",
    [("sasrec", "none", "bce"), ("sasrec", "simple", "ce"), ("stosa", "none", "bce"),
     ("stosa", "value", "ce")],
)  # fmt: skip
def test_sparse_embedding_gradients_equal_dense_ones(backbone, mechanism, loss, groups):
    config = TrialConfig(
        dataset="synthetic", backbone=backbone, mechanism=mechanism, loss=loss,
        hidden_size=16, num_heads=2, max_len=20, batch_size=64, dropout=0.0,
        attn_dropout=0.0, length_groups=groups,
    )  # fmt: skip
    sparse, dense = step_gradients(config, True), step_gradients(config, False)
    assert sparse.keys() == dense.keys()
    embeddings = [name for name in dense if "item" in name and name.endswith("weight")]
    assert embeddings  # the item tables got gradients
    for name, grad in dense.items():
        assert not sparse[name].is_sparse, name
        torch.testing.assert_close(sparse[name], grad, rtol=1e-5, atol=1e-8, msg=name)
