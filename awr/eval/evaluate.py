"""Full-ranking evaluation on the model's device (SPEC 2): every item scored, history masked."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from awr.data.batches import EvalTensors
from awr.eval.metrics import metric_sums, target_ranks


def mask_history(scores: Tensor, tensors: EvalTensors, start: int, stop: int) -> Tensor:
    """Set the input items of users start..stop-1 and the padding column to -inf, in place.

    scores (B, N+1) for those users; the history is the full (untruncated) input sequence.
    """
    offsets = tensors.history_offsets
    lengths = offsets[start + 1 : stop + 1] - offsets[start:stop]  # (B,)
    rows = torch.repeat_interleave(torch.arange(stop - start, device=scores.device), lengths)
    items = tensors.history_items[offsets[start] : offsets[stop]]
    scores[rows, items] = float("-inf")
    scores[:, 0] = float("-inf")
    return scores


def batch_ranks(model: nn.Module, tensors: EvalTensors, start: int, stop: int) -> Tensor:
    """Ranks of the targets of users start..stop-1: the target keeps its score, ties count
    against it."""
    targets = tensors.targets[start:stop]
    scores = model.score_all(tensors.inputs[start:stop]).float()  # (B, N+1)
    target_scores = scores.gather(1, targets[:, None])
    scores = mask_history(scores, tensors, start, stop)
    scores.scatter_(1, targets[:, None], target_scores)
    return target_ranks(scores, targets)


@torch.inference_mode()
def evaluate(model: nn.Module, tensors: EvalTensors, batch_size: int = 1024) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and MRR over the evaluated users; leaves the model in eval mode."""
    model.eval()
    num_users = int(tensors.targets.shape[0])
    totals: dict[str, Tensor] = {}
    for start in range(0, num_users, batch_size):
        stop = min(start + batch_size, num_users)
        for name, value in metric_sums(batch_ranks(model, tensors, start, stop)).items():
            totals[name] = totals.get(name, 0) + value
    return {name: float(total) / max(num_users, 1) for name, total in totals.items()}
