"""build_model(config, num_items): the backbone with its score function and refinement handed in
(a Recommender: awr/models/contract.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from awr.config import TrialConfig
from awr.models.attention import dot_product_scores, wasserstein_scores
from awr.models.contract import Recommender
from awr.models.refine import build_refinement
from awr.models.sasrec import SASRec
from awr.models.stosa import STOSA

# backbone -> the class with its score function (and whether the fused kernel may compute it)
BACKBONES: dict[str, Callable[..., Recommender]] = {
    "sasrec": partial(SASRec, score_fn=dot_product_scores, fused=True),
    "stosa": partial(STOSA, score_fn=wasserstein_scores),
}


def build_model(config: TrialConfig, num_items: int) -> Recommender:
    """The model for `config` (validated again: an unknown backbone or a mechanism that does
    not fit it is the config's own ConfigError, which lists the valid names, even for a config
    altered after it was made)."""
    config = config.replace()  # a new TrialConfig: validated again
    factory = partial(
        build_refinement,
        config.mechanism,
        config.max_len,
        config.num_heads,
        per_head=config.refine_per_head,
        learned_mix=config.additive_mix == "learned",
    )
    return BACKBONES[config.backbone](config, num_items, factory)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
