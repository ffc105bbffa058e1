"""The epoch loop: Adam, seeded shuffling and negatives, gradient norm, early stopping on
validation NDCG@5 with patience, the best state kept. Test data never reaches this file."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from awr.config import TrialConfig
from awr.data.batches import EvalTensors, TrainTensors, sample_negatives, split_by_length
from awr.errors import AwrError
from awr.eta import fit_epochs_left, format_duration
from awr.eval.evaluate import evaluate
from awr.eval.metrics import SELECTION_METRIC
from awr.models.contract import Recommender
from awr.schema import EPOCH_SCALARS, SEARCH_METRIC, VALID, metric_key
from awr.train.allocator import reuse_freed_memory
from awr.train.length_groups import with_resolved_groups
from awr.train.optim import SparseEmbeddingGrads, adam


class TrainingDiverged(AwrError, RuntimeError):
    """The training loss became NaN or infinite; the trial fails alone (a setting the user can
    change, usually the learning rate, not a bug)."""


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    grad_norm: float
    epoch_seconds: float
    eval_seconds: float
    valid: dict[str, float]
    best_epoch: int
    best_valid_ndcg_5: float  # running best: what the searcher optimises

    def metrics(self) -> dict[str, float]:
        """Flat MLflow / Tune metric names: train/loss, valid/ndcg_5, grad_norm, ..."""
        epoch = (self.train_loss, self.grad_norm, self.epoch_seconds, self.eval_seconds)
        flat = dict(zip(EPOCH_SCALARS, epoch, strict=True))
        flat[SEARCH_METRIC] = self.best_valid_ndcg_5
        flat.update({metric_key(name, VALID): value for name, value in self.valid.items()})
        return flat


class EpochCallback(Protocol):
    def __call__(self, record: EpochRecord, state: Callable[[], dict[str, Any]]) -> None:
        """Called after every epoch; `state()` returns a checkpoint for `Trainer.load_state`."""


@dataclass
class FitState:
    epoch: int = 0
    best_epoch: int = 0
    best_score: float = -math.inf
    best_valid: dict[str, float] = field(default_factory=dict)
    best_model: dict[str, torch.Tensor] | None = None
    history: list[EpochRecord] = field(default_factory=list)


def advance(
    state: FitState,
    loss: float,
    grad_norm: float,
    train_seconds: float,
    eval_seconds: float,
    valid: dict[str, float],
    model_state: Callable[[], dict[str, torch.Tensor]],
) -> EpochRecord:
    """Count one epoch into `state`: a better validation NDCG@5 becomes the best (with a copy
    of `model_state()`); the epoch's record is appended to the history and returned."""
    state.epoch += 1
    if valid[SELECTION_METRIC] > state.best_score:
        state.best_score = valid[SELECTION_METRIC]
        state.best_epoch = state.epoch
        state.best_valid = valid
        state.best_model = copy.deepcopy(model_state())
    record = EpochRecord(
        epoch=state.epoch,
        train_loss=loss,
        grad_norm=grad_norm,
        epoch_seconds=train_seconds,
        eval_seconds=eval_seconds,
        valid=valid,
        best_epoch=state.best_epoch,
        best_valid_ndcg_5=state.best_score,
    )
    state.history.append(record)
    return record


def epoch_line(
    record: EpochRecord,
    elapsed: float | None = None,
    budget: tuple[int, int] | None = None,
    explain: bool = False,
) -> str:
    """The progress line of one epoch. With `elapsed` (seconds of training and validation so
    far) and `budget` (patience, max_epochs), it ends with the time left, estimated at the
    mean pace so far (awr/eta.py): from the earliest early stop (`patience` epochs after the
    best one, unless validation improves) to the full `max_epochs`, e.g.
    `elapsed 1m29s  left 36s to 15m01s`; `explain` adds what that range means (once per run)."""
    valid = record.valid
    line = (
        f"epoch {record.epoch:4d}  loss {record.train_loss:.4f}  valid ndcg_5 "
        f"{valid['ndcg_5']:.4f}  recall_5 {valid['recall_5']:.4f}  best "
        f"{record.best_valid_ndcg_5:.4f} @ {record.best_epoch}  {record.epoch_seconds:.1f}s + "
        f"eval {record.eval_seconds:.1f}s"
    )
    if elapsed is None or budget is None:
        return line
    patience, max_epochs = budget
    fewest, most = fit_epochs_left(record.epoch, record.best_epoch, patience, max_epochs)
    pace = elapsed / max(record.epoch, 1)
    line += f"  elapsed {format_duration(elapsed)}  left {format_duration(pace * fewest)}"
    if most != fewest:
        line += f" to {format_duration(pace * most)}"
    if explain:
        line += (
            f"  (time left: from an early stop {patience} epochs after the best one, unless "
            f"valid ndcg_5 improves, to max_epochs {max_epochs})"
        )
    return line


def fit_state_dict(state: FitState) -> dict[str, Any]:
    """A FitState as plain values for a checkpoint (records as dicts)."""
    return {
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score,
        "best_valid": state.best_valid,
        "best_model": state.best_model,
        "history": [asdict(record) for record in state.history],
    }


def fit_state_from_dict(values: dict[str, Any]) -> FitState:
    fit = dict(values)
    fit["history"] = [EpochRecord(**record) for record in fit["history"]]
    return FitState(**fit)


def resolved_rows(config: TrialConfig, train: TrainTensors) -> tuple[torch.Tensor, TrialConfig]:
    """The loss positions of each training row (U_train,) and `config` with its length groups
    resolved from those counts (0 = auto: awr/train/length_groups.py)."""
    counts = (train.targets > 0).sum(1)
    return counts, with_resolved_groups(config, counts.cpu().numpy(), train.inputs.device)


def global_grad_norm(model: nn.Module) -> float:
    """sqrt(sum ||grad||^2) over all parameters that have a gradient."""
    squares = [p.grad.detach().pow(2).sum() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


class Trainer:
    """Trains `model` on `train`, selecting on `valid`. `config` is the trial's; `self.config`
    is it with its length groups resolved (what the trial records)."""

    def __init__(
        self,
        model: Recommender,
        config: TrialConfig,
        train: TrainTensors,
        valid: EvalTensors,
        num_items: int,
    ) -> None:
        self.model = model
        self.valid_counts, self.config = resolved_rows(config, train)
        self.length_groups = self.config.length_groups
        self.train_tensors = train
        self.valid_tensors = valid
        self.num_items = num_items
        device = train.inputs.device
        if device.type == "cpu":
            reuse_freed_memory()  # a step's large activations: reused, not faulted in again
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.optimizer = adam(model.parameters(), config.lr, config.weight_decay, device)
        self.sparse_grads = SparseEmbeddingGrads(model, enabled=not config.compile)
        self.loss_fn = torch.compile(model.loss) if config.compile else model.loss
        self.autocast = torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
        )
        self.state = FitState()

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training users in a seeded order -> (mean loss, grad norm)."""
        self.model.train()
        tensors = self.train_tensors
        num_rows = tensors.inputs.shape[0]
        order = torch.randperm(num_rows, generator=self.generator, device=tensors.inputs.device)
        negatives = sample_negatives(tensors, order, self.num_items, self.generator)
        total, steps, grad_norm = torch.zeros((), device=order.device), 0, 0.0
        for start in range(0, num_rows, self.config.batch_size):
            rows = order[start : start + self.config.batch_size]
            batch_negatives = negatives[start : start + self.config.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            total += self.backward(rows, batch_negatives)
            steps += 1
            if start + self.config.batch_size >= num_rows:
                grad_norm = global_grad_norm(self.model)
            self.optimizer.step()
        mean_loss = float(total) / max(steps, 1)
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(f"training loss is {mean_loss} at epoch {self.state.epoch + 1}")
        return mean_loss, grad_norm

    def backward(self, rows: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Gradients of one batch's loss, accumulated into .grad; returns the loss (detached).

        With length groups, each part's loss (a mean over its valid positions) is weighted by
        its share of the batch's valid positions: the sum is the batch loss, so the gradient is
        the one-batch gradient up to floating-point order and dropout's random draws."""
        with self.sparse_grads.capture():
            loss = self.grouped_backward(rows, negatives)
        self.sparse_grads.densify()
        return loss

    def grouped_backward(self, rows: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        tensors = self.train_tensors
        if self.length_groups == 1:
            with self.autocast:
                loss = self.loss_fn(tensors.inputs[rows], tensors.targets[rows], negatives)
            loss.backward()
            return loss.detach().float()
        counts = self.valid_counts[rows]  # (B,)
        total = counts.sum().clamp_min(1)
        batch_loss = torch.zeros((), device=rows.device)
        for part in split_by_length(counts, self.length_groups):
            part_rows = rows[part]
            with self.autocast:
                loss = self.loss_fn(
                    tensors.inputs[part_rows], tensors.targets[part_rows], negatives[part]
                )
            weighted = loss * (counts[part].sum() / total)
            weighted.backward()
            batch_loss += weighted.detach().float()
        return batch_loss

    def fit(
        self,
        callback: EpochCallback | None = None,
        log: Callable[[str], None] | None = None,
    ) -> FitState:
        """Train until max_epochs or `patience` epochs without a better validation NDCG@5."""
        state = self.state
        logged = False  # the first line of this call explains the time left
        while state.epoch < self.config.max_epochs:
            if state.epoch - state.best_epoch >= self.config.patience:
                break
            started = time.perf_counter()
            loss, grad_norm = self.train_epoch()
            train_seconds = time.perf_counter() - started
            valid = evaluate(self.model, self.valid_tensors, self.config.eval_batch_size)
            eval_seconds = time.perf_counter() - started - train_seconds
            record = advance(
                state, loss, grad_norm, train_seconds, eval_seconds, valid, self.model.state_dict
            )
            if log is not None:
                elapsed = sum(r.epoch_seconds + r.eval_seconds for r in state.history)
                budget = (self.config.patience, self.config.max_epochs)
                log(epoch_line(record, elapsed, budget, explain=not logged))
                logged = True
            if callback is not None:
                callback(record, self.checkpoint)
        return state

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this epoch ended."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "fit": fit_state_dict(self.state),
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.generator.set_state(checkpoint["generator"])
        torch.set_rng_state(checkpoint["torch_rng"])
        self.state = fit_state_from_dict(checkpoint["fit"])
