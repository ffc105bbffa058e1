"""Helpers for the model tests: every position's outputs, which the library never needs
(training reads the trimmed window, scoring the last position)."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from awr.models.sasrec import SASRec
from awr.models.stosa import STOSA


def encode(model: SASRec | STOSA, input_ids: Tensor) -> Tensor | tuple[Tensor, Tensor]:
    """input_ids (B, L) left-padded -> SASRec's hidden states (B, L, D), or STOSA's sequence
    Gaussians: mean, cov (B, L, D) each; the columns the padding trim skipped are 0."""
    if isinstance(model, SASRec):
        hidden, skipped = model.encode_window(input_ids)
        return F.pad(hidden, (0, 0, skipped, 0))
    mean, cov, skipped = model.encode_window(input_ids)
    return F.pad(mean, (0, 0, skipped, 0)), F.pad(cov, (0, 0, skipped, 0))
