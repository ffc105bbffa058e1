"""The optimizer step's fast paths, each giving the plain path's numbers up to floating-point
order (tests/test_train_optim.py):

- `adam`: torch's fused Adam kernel where the device has one (CPU, CUDA): one pass over each
  parameter instead of about ten elementwise ops, on Beauty's two 57k x 64 item tables 6x
  less time per step than the default loop.
- `SparseEmbeddingGrads`: during backward, the embedding lookups hand back sparse gradients
  (the rows looked up and their values), made dense once per step. A dense embedding gradient
  is a zero-filled (N+1, D) table per lookup: STOSA's loss looks its two tables up three times,
  times the length groups of a step, so a Beauty step filled 48 tables of 14.7 MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(
    params: Iterable[nn.Parameter], lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Adam:
    """Adam(betas 0.9, 0.999, eps 1e-8), fused on FUSED_ADAM_DEVICES."""
    return torch.optim.Adam(
        params,
        lr=lr,
        betas=(0.9, 0.999),
        weight_decay=weight_decay,
        fused=True if device.type in FUSED_ADAM_DEVICES else None,
    )


class SparseEmbeddingGrads:
    """Sparse embedding gradients inside `capture()`, dense ones after `densify()`.

    Only backward passes inside `capture()` see sparse lookups: outside it the model's
    embeddings are as built (evaluation, torch.func transforms, other callers). Disabled
    (`enabled=False`: a no-op) for a compiled loss, whose kernels expect dense lookups."""

    def __init__(self, model: nn.Module, enabled: bool = True) -> None:
        modules = model.modules() if enabled else ()
        self.embeddings = [m for m in modules if isinstance(m, nn.Embedding)]

    @contextmanager
    def capture(self) -> Iterator[None]:
        previous = [m.sparse for m in self.embeddings]
        for module in self.embeddings:
            module.sparse = True
        try:
            yield
        finally:
            for module, sparse in zip(self.embeddings, previous, strict=True):
                module.sparse = sparse

    def densify(self) -> int:
        """Every sparse .grad of an embedding weight as a dense tensor (duplicates summed);
        returns how many were sparse."""
        count = 0
        for module in self.embeddings:
            grad = module.weight.grad
            if grad is not None and grad.is_sparse:
                module.weight.grad = grad.to_dense()
                count += 1
        return count
