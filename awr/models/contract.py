"""The model contract: what Trainer, evaluate and capture_attention call on a model.

A `Recommender` is an nn.Module (its parameters, train/eval, state dicts) with

    loss(input_ids, targets, negatives) -> scalar     the training loss of a batch (B, L) each
    score_all(input_ids) -> (B, N+1)                  every item's score for the last position
    attention_layers() -> [AttentionLayer]            one per layer, each with its refinement
    capturing() -> context: [[(A, R)] per layer]      every forward pass inside records A and R
    untrimmed() -> context                            no padding trim inside: full (L, L) maps

Both backbones derive from `Backbone`, which holds the config, the padding trim and the capture
switch, and scores through their factors (awr/models/scoring.py). The packed models
(awr/models/packed.py) stack the parameters of K Recommenders of one config.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from awr.config import TrialConfig
from awr.models.refine import Refinement
from awr.models.scoring import factor_scores

LayerMaps = list[tuple[Tensor, Tensor]]  # a layer's (A, R) per forward pass, (B, H, l, l) each


@runtime_checkable
class AttentionLayer(Protocol):
    """One attention layer: its refinement, and `captured` (None, or a list that every forward
    pass appends its (A * query_mask, R) to; set by `Recommender.capturing`)."""

    refinement: Refinement
    captured: LayerMaps | None


@runtime_checkable
class Recommender(Protocol):
    """A sequential recommender over item ids 1..num_items (0 is padding); see the module
    docstring. Also an nn.Module: the methods of it that the trainers use are listed last."""

    config: TrialConfig
    num_items: int

    def loss(self, input_ids: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        """input_ids, targets, negatives (B, L), 0 marking padding -> the mean loss ()."""

    def score_all(self, input_ids: Tensor) -> Tensor:
        """(B, L) left-padded ids -> scores (B, N+1) of every item id; column 0 is padding."""

    def attention_layers(self) -> Sequence[AttentionLayer]:
        """The attention layers, first to last."""

    def capturing(self) -> AbstractContextManager[list[LayerMaps]]:
        """A context whose value holds, per layer, the (A, R) of each forward pass inside."""

    def untrimmed(self) -> AbstractContextManager[None]:
        """A context in which no padding columns are skipped (same outputs, full windows)."""

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def modules(self) -> Iterator[nn.Module]: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def load_state_dict(
        self, state_dict: Any, strict: bool = True, assign: bool = False
    ) -> Any: ...


class Backbone(nn.Module):
    """What SASRec and STOSA share: config, num_items, the padding trim (`trim_padding`: skip
    the leading columns that are padding in every row of a batch; the outputs do not change)
    and the capture switch. A subclass builds its layers, defines `attention_layers`, `loss`,
    `query_factors`, `item_factors` and `score_ceiling` (awr/models/scoring.py)."""

    score_ceiling: float | None = None

    def __init__(self, config: TrialConfig, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.num_items = num_items
        self.trim_padding = True

    def attention_layers(self) -> Sequence[AttentionLayer]:
        raise NotImplementedError

    def query_factors(self, input_ids: Tensor) -> Tensor:
        raise NotImplementedError

    def item_factors(self) -> Tensor:
        raise NotImplementedError

    def score_all(self, input_ids: Tensor) -> Tensor:
        """Scores of every item id for the last position: (B, L) -> (B, N+1); column 0 is pad."""
        return factor_scores(self.query_factors(input_ids), self.item_factors(), self.score_ceiling)

    @contextmanager
    def capturing(self) -> Iterator[list[LayerMaps]]:
        """Inside, every forward pass records each layer's A (padded query rows zero) and R,
        the weights that replace A (R = A for mechanism none), on all query rows."""
        layers = list(self.attention_layers())
        maps: list[LayerMaps] = [[] for _ in layers]
        for layer, records in zip(layers, maps, strict=True):
            layer.captured = records
        try:
            yield maps
        finally:
            for layer in layers:
                layer.captured = None

    @contextmanager
    def untrimmed(self) -> Iterator[None]:
        """Inside, no padding columns are skipped: A and R come out as full (L, L) maps."""
        trim, self.trim_padding = self.trim_padding, False
        try:
            yield
        finally:
            self.trim_padding = trim
