"""Full-ranking evaluation on the model's device (SPEC 2): every item scored, history masked."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from awr.data.batches import EvalTensors
from awr.eval.metrics import metrics_from_ranks, target_ranks


def history_entries(tensors: EvalTensors, rows: Tensor) -> tuple[Tensor, Tensor]:
    """(batch position, item) of every item in the full (untruncated) input histories of
    `rows`: row r's history is history_items[offsets[r] : offsets[r + 1]]."""
    offsets = tensors.history_offsets
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts  # (B,)
    total = int(lengths.sum())  # the one host sync per batch
    positions = torch.repeat_interleave(
        torch.arange(rows.numel(), device=rows.device), lengths, output_size=total
    )
    # entry j of row r sits at starts[r] + (j - first entry of r in this batch)
    shift = torch.repeat_interleave(
        starts - (lengths.cumsum(0) - lengths), lengths, output_size=total
    )
    return positions, tensors.history_items[shift + torch.arange(total, device=rows.device)]


def batch_ranks(model: nn.Module, tensors: EvalTensors, rows: Tensor) -> Tensor:
    """Ranks of the targets of `rows` among all items with each user's history masked: the
    target keeps its own score, ties count against it."""
    targets = tensors.targets[rows]
    scores = model.score_all(tensors.inputs[rows]).float()  # (B, N+1)
    target_scores = scores.gather(1, targets[:, None])
    positions, items = history_entries(tensors, rows)
    scores[positions, items] = float("-inf")
    scores[:, 0] = float("-inf")  # the padding id
    scores.scatter_(1, targets[:, None], target_scores)
    return target_ranks(scores, targets)


def length_order(tensors: EvalTensors) -> Tensor:
    """The rows sorted by input length (stable): a batch of similar lengths shares its left
    padding, which the backbones skip. Metrics are means over users, so order changes nothing
    but floating-point summation order."""
    return torch.argsort((tensors.inputs > 0).sum(1), stable=True)


@torch.inference_mode()
def user_ranks(model: nn.Module, tensors: EvalTensors, batch_size: int = 1024) -> Tensor:
    """The target's rank for every evaluated user, (U_eval,) int64 in the tensors' row order
    (batches run in length order); leaves the model in eval mode."""
    model.eval()
    ranks = torch.empty_like(tensors.targets)
    for rows in length_order(tensors).split(batch_size):
        ranks[rows] = batch_ranks(model, tensors, rows)
    return ranks


def evaluate(model: nn.Module, tensors: EvalTensors, batch_size: int = 1024) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and MRR over the evaluated users; leaves the model in eval mode."""
    return metrics_from_ranks(user_ranks(model, tensors, batch_size))
