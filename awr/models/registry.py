"""build_model(config, num_items): the backbone with its score function and refinement handed in."""

from __future__ import annotations

from functools import partial

from torch import nn

from awr.config import MECHANISMS_BY_BACKBONE, ConfigError, TrialConfig
from awr.models.attention import dot_product_scores, wasserstein_scores
from awr.models.refine import build_refinement
from awr.models.sasrec import SASRec
from awr.models.stosa import STOSA

BACKBONES = {
    "sasrec": (SASRec, dot_product_scores),
    "stosa": (STOSA, wasserstein_scores),
}


def build_model(config: TrialConfig, num_items: int) -> nn.Module:
    """The model for `config`; an unknown backbone or a mechanism that does not fit it is a
    ConfigError that lists the valid names."""
    if config.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {config.backbone!r}; valid: {', '.join(BACKBONES)}")
    allowed = MECHANISMS_BY_BACKBONE[config.backbone]
    if config.mechanism not in allowed:
        raise ConfigError(
            f"mechanism={config.mechanism} does not fit backbone={config.backbone}; "
            f"valid: {', '.join(allowed)}"
        )
    model_class, score_fn = BACKBONES[config.backbone]
    factory = partial(
        build_refinement,
        config.mechanism,
        config.max_len,
        config.num_heads,
        per_head=config.refine_per_head,
        learned_mix=config.additive_mix == "learned",
    )
    return model_class(config, num_items, factory, score_fn)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
