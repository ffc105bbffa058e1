"""Full-ranking evaluation on the model's device (docs/protocol.md): all items scored, history
masked.

Models with score factors (awr/models/scoring.py: both backbones) are scored with the item
factors built once per pass, each batch's products written into one reused (N+1, B) buffer
and the score ceiling applied to the target's score alone; others (test doubles) through
`score_all`. Either way the history is masked in place and the ranks are counted in item
chunks (awr/eval/metrics.py): the scores are written once and read twice (masking, counting),
and no (B, N) copy is made."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from awr.data.batches import EvalTensors
from awr.eval.metrics import metrics_from_ranks, target_ranks
from awr.models.contract import Recommender
from awr.models.scoring import FactorScorer, factor_scores, has_factors

BatchScorer = Callable[[Tensor], Tensor]  # (B, L) input ids -> (B, N+1) writable scores


def history_entries(tensors: EvalTensors, rows: Tensor) -> tuple[Tensor, Tensor]:
    """(batch position, item) of every item in the full (untruncated) input histories of
    `rows`: row r's history is history_items[offsets[r] : offsets[r + 1]]."""
    lengths, items = tensors.histories(rows)  # the one host sync per batch
    positions = torch.repeat_interleave(
        torch.arange(rows.numel(), device=rows.device), lengths, output_size=items.numel()
    )
    return positions, items


def masked_ranks(
    scores: Tensor, tensors: EvalTensors, rows: Tensor, ceiling: float | None = None
) -> Tensor:
    """Ranks of the targets of `rows` among all items, given their scores (B, N+1), which are
    overwritten: each user's history and the padding id go to -inf in place, the target keeps
    its own score, ties count against it.

    `ceiling`: the scores are min(scores, ceiling) (the caller skipped that pass); counting
    the raw scores >= min(target, ceiling) gives the same ranks."""
    targets = tensors.targets[rows]
    target_scores = scores.gather(1, targets[:, None])
    if ceiling is not None:
        target_scores.clamp_max_(ceiling)  # NaN stays NaN
    positions, items = history_entries(tensors, rows)
    scores[positions, items] = float("-inf")
    scores[:, 0] = float("-inf")  # the padding id
    scores.scatter_(1, targets[:, None], target_scores)
    return target_ranks(scores, targets)


def factor_scorer(model: FactorScorer, batch_size: int) -> BatchScorer:
    """Scores of a batch as the product of its query factors and the item factors, without
    the model's ceiling (masked_ranks applies it to the target alone), into one buffer: the
    item factors (N+1, K) are built once, the (N+1, batch_size) buffer is allocated once (a
    fresh (B, N+1) tensor per batch costs page faults on CPU: 58 MB per Beauty batch)."""
    items = model.item_factors().float()
    buffer = torch.empty(items.shape[0] * batch_size, dtype=items.dtype, device=items.device)

    def scores(input_ids: Tensor) -> Tensor:
        queries = model.query_factors(input_ids).float()
        out = buffer[: items.shape[0] * queries.shape[0]].view(items.shape[0], queries.shape[0])
        return factor_scores(queries, items, None, out=out)

    return scores


def length_order(tensors: EvalTensors) -> Tensor:
    """The rows sorted by input length (stable): a batch of similar lengths shares its left
    padding, which the backbones skip. Metrics are means over users, so order changes nothing
    but floating-point summation order."""
    return torch.argsort((tensors.inputs > 0).sum(1), stable=True)


@torch.inference_mode()
def user_ranks(model: Recommender, tensors: EvalTensors, batch_size: int = 1024) -> Tensor:
    """The target's rank for every evaluated user, (U_eval,) int64 in the tensors' row order
    (batches run in length order); leaves the model in eval mode."""
    model.eval()
    ranks = torch.empty_like(tensors.targets)
    ceiling = None
    if has_factors(model):
        scorer = factor_scorer(model, min(batch_size, max(int(ranks.numel()), 1)))
        ceiling = model.score_ceiling
    else:
        scorer = lambda input_ids: model.score_all(input_ids).float()  # noqa: E731
    for rows in length_order(tensors).split(batch_size):
        ranks[rows] = masked_ranks(scorer(tensors.inputs[rows]), tensors, rows, ceiling)
    return ranks


def evaluate(model: Recommender, tensors: EvalTensors, batch_size: int = 1024) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and MRR over the evaluated users; leaves the model in eval mode."""
    return metrics_from_ranks(user_ranks(model, tensors, batch_size))
