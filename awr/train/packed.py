"""The epoch loop of a pack: K trials that differ only in their seed, trained as one packed
model (awr/models/packed.py), each member exactly as Trainer trains its trial alone.

Per member, as in Trainer: its own generator, seeded with its seed, draws its batch order
(randperm) and its negatives (sample_negatives) in Trainer's order, so step s of member k is the
batch of step s of its unpacked trial; its dropout masks come from its own generator (the state
its unpacked trial's global RNG has after the model's init); its gradient is the one-batch
gradient (length groups per member, each weighted by its share of valid positions, as Trainer
weights them); Adam on stacked parameters is elementwise, so every member has its own moments;
its gradient norm, validation, early stopping and best state are its own.

A member whose mean training loss is not finite fails alone (TrainingDiverged, as Trainer
raises it). A member that fails or stops (max_epochs, patience) leaves the pack: its row is
dropped from every parameter and Adam moment, so it costs nothing afterwards. Per epoch, the
pack's training time is shared out equally among the members that trained (`epoch_seconds`);
each member's validation pass is timed alone (`eval_seconds`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from awr.config import TrialConfig
from awr.data.batches import EvalTensors, TrainTensors, sample_negatives
from awr.eval.evaluate import evaluate
from awr.models.contract import Recommender
from awr.models.packed import MemberDropout, keep_members, member_norms, member_state, stack_members
from awr.models.packed_backbones import packed_loss
from awr.train.allocator import reuse_freed_memory
from awr.train.optim import SparseEmbeddingGrads, adam
from awr.train.trainer import (
    EpochRecord,
    FitState,
    TrainingDiverged,
    advance,
    fit_state_dict,
    fit_state_from_dict,
    resolved_rows,
)

ACTIVE, STOPPED, FAILED = "active", "stopped", "failed"


@dataclass
class Member:
    config: TrialConfig
    generator: torch.Generator  # batch order and negatives, as Trainer.generator
    dropout: torch.Generator  # dropout masks
    state: FitState = field(default_factory=FitState)
    status: str = ACTIVE
    error: str | None = None  # "TrainingDiverged: ..." for a failed member


@dataclass(frozen=True)
class PackEpoch:
    """What one epoch of the pack did: each trained member's record, the members that left
    the pack after it (stopped or failed) and how many still train."""

    epoch: int
    records: dict[int, EpochRecord]
    ended: tuple[int, ...]
    active: int


class PackedTrainer:
    """`models[k]` is member k's freshly built model (its init) and `dropout[k]` its dropout
    generator, for `configs` that differ only in seed (awr.packed_trial.packed_trainer builds
    and checks them); models[0] then serves as the evaluation model into which a member's
    parameters are loaded. The members' configs are kept with their length groups resolved,
    as Trainer resolves them."""

    def __init__(
        self,
        models: Sequence[Recommender],
        configs: Sequence[TrialConfig],
        dropout: Sequence[torch.Generator],
        train: TrainTensors,
        valid: EvalTensors,
        num_items: int,
    ) -> None:
        self.valid_counts, config = resolved_rows(configs[0], train)
        self.config, self.length_groups = config, config.length_groups
        self.model = stack_members(models)
        self.scratch = models[0]
        self.train_tensors = train
        self.valid_tensors = valid
        self.num_items = num_items
        device = train.inputs.device
        if device.type == "cpu":
            reuse_freed_memory()  # K times larger activations: reused, not faulted in again
        self.members = [
            Member(config.replace(seed=seed), torch.Generator(device=device).manual_seed(seed), g)
            for seed, g in zip([c.seed for c in configs], dropout, strict=True)
        ]
        self.rows = list(range(len(self.members)))  # the member in each packed row
        self.drop = MemberDropout([m.dropout for m in self.members])
        self.optimizer = self.adam()
        self.sparse_grads = SparseEmbeddingGrads(self.model)  # packed lookups: sparse
        self.loss_fn = torch.compile(packed_loss) if config.compile else packed_loss
        self.autocast = torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
        )

    def adam(self) -> torch.optim.Adam:
        c = self.config
        device = next(self.model.parameters()).device
        return adam(self.model.parameters(), c.lr, c.weight_decay, device)

    def train_epoch(self) -> tuple[list[float], list[float]]:
        """One pass of every packed member over the training users, each in its own seeded
        order -> (mean loss, grad norm) per row."""
        self.model.train()
        tensors = self.train_tensors
        num_rows, size = tensors.inputs.shape[0], self.config.batch_size
        orders, negatives = [], []
        for index in self.rows:
            generator = self.members[index].generator
            order = torch.randperm(num_rows, generator=generator, device=tensors.inputs.device)
            orders.append(order)
            negatives.append(sample_negatives(tensors, order, self.num_items, generator))
        order, negative = torch.stack(orders), torch.stack(negatives)  # (A, U), (A, U, L)
        total = torch.zeros(len(self.rows), device=order.device)
        steps, norms = 0, torch.zeros(len(self.rows))
        for start in range(0, num_rows, size):
            self.optimizer.zero_grad(set_to_none=True)
            total += self.backward(
                order[:, start : start + size], negative[:, start : start + size]
            )
            self.sparse_grads.densify()
            steps += 1
            if start + size >= num_rows:
                norms = member_norms(self.model)
            self.optimizer.step()
        return [value / max(steps, 1) for value in total.tolist()], norms.tolist()

    def backward(self, rows: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Gradients of one step (rows (A, b), negatives (A, b, L)) accumulated into .grad;
        returns each member's batch loss (A,). With length groups, each member's rows are
        sorted by length and cut into parts, each part's loss weighted by the member's share
        of valid positions in it, as Trainer.backward does for one trial."""
        tensors = self.train_tensors
        if self.length_groups == 1:
            with self.autocast:
                loss = self.loss_fn(
                    self.model, tensors.inputs[rows], tensors.targets[rows], negatives, self.drop
                )
            loss.sum().backward()
            return loss.detach().float()
        counts = self.valid_counts[rows]  # (A, b)
        total = counts.sum(1).clamp_min(1)
        order = torch.argsort(counts, dim=1, stable=True)
        members = torch.arange(rows.shape[0], device=rows.device)[:, None]
        batch_loss = torch.zeros(rows.shape[0], device=rows.device)
        for part in order.tensor_split(self.length_groups, dim=1):
            if not part.shape[1]:
                continue
            part_rows = rows.gather(1, part)
            with self.autocast:
                loss = self.loss_fn(
                    self.model,
                    tensors.inputs[part_rows],
                    tensors.targets[part_rows],
                    negatives[members, part],
                    self.drop,
                )
            weighted = loss * (counts.gather(1, part).sum(1) / total)
            weighted.sum().backward()
            batch_loss += weighted.detach().float()
        return batch_loss

    def evaluation_model(self, index: int, best: bool = False) -> Recommender:
        """The evaluation model holding member `index`'s parameters: its current ones, or with
        `best` its best state (the current ones when it never had one)."""
        state = self.members[index].state
        if best and state.best_model is not None:
            self.scratch.load_state_dict(state.best_model)
        else:
            self.scratch.load_state_dict(self.current_state(index))
        return self.scratch

    def current_state(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in member_state(self.model, self.rows.index(index)).items()}

    def fit(
        self,
        on_epoch: Callable[[int, EpochRecord], None],
        on_end: Callable[[int], None],
        on_pack_epoch: Callable[[PackEpoch], None],
    ) -> None:
        """Train until every member has stopped or failed. `on_epoch(member, record)` after
        each member's epoch; `on_end(member)` when a member leaves the pack (before its row is
        dropped); `on_pack_epoch` once the epoch is done for all."""
        self.settle(on_end)
        while self.rows:
            epoch = self.members[self.rows[0]].state.epoch + 1  # every packed member's
            started = time.perf_counter()
            losses, norms = self.train_epoch()
            share = (time.perf_counter() - started) / len(self.rows)
            records: dict[int, EpochRecord] = {}
            for index, loss, norm in zip(list(self.rows), losses, norms, strict=True):
                member = self.members[index]
                if not math.isfinite(loss):
                    error = TrainingDiverged(f"training loss is {loss} at epoch {epoch}")
                    member.status, member.error = FAILED, f"{type(error).__name__}: {error}"
                    continue
                records[index] = self.validate(index, loss, norm, share)
                on_epoch(index, records[index])
            ended = self.settle(on_end)
            on_pack_epoch(PackEpoch(epoch, records, ended, len(self.rows)))

    def validate(self, index: int, loss: float, norm: float, share: float) -> EpochRecord:
        """Member `index`'s validation pass after its epoch, counted into its state."""
        started = time.perf_counter()
        model = self.evaluation_model(index)
        valid = evaluate(model, self.valid_tensors, self.config.eval_batch_size)
        seconds = time.perf_counter() - started
        state = self.members[index].state
        return advance(state, loss, norm, share, seconds, valid, lambda: self.current_state(index))

    def settle(self, on_end: Callable[[int], None]) -> tuple[int, ...]:
        """Members that failed or meet Trainer's stopping rule leave the pack."""
        ended = []
        for index in self.rows:
            member = self.members[index]
            state, config = member.state, member.config
            if member.status == ACTIVE and (
                state.epoch >= config.max_epochs
                or state.epoch - state.best_epoch >= config.patience
            ):
                member.status = STOPPED
            if member.status != ACTIVE:
                on_end(index)
                state.best_model = None  # scored: checkpoints need it no more
                ended.append(index)
        if ended:
            self.keep([i for i in self.rows if i not in ended])
        return tuple(ended)

    def keep(self, indices: list[int]) -> None:
        """Keep the members `indices` (in pack order): rows of every parameter and Adam
        moment; Adam's shared step count stays (all packed members took the same steps)."""
        rows = [self.rows.index(i) for i in indices]
        state = self.optimizer.state_dict()
        keep_members(self.model, rows)
        self.rows = list(indices)
        self.drop = MemberDropout([self.members[i].dropout for i in self.rows])
        if not self.rows:
            return
        index = torch.tensor(rows)
        state["state"] = {
            param: {
                key: value if key == "step" else value[index.to(value.device)]
                for key, value in moments.items()
            }
            for param, moments in state["state"].items()
        }
        self.optimizer = self.adam()
        self.optimizer.load_state_dict(state)

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to continue every member exactly where this epoch ended."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.rows else None,
            "rows": list(self.rows),
            "members": [
                {
                    "generator": m.generator.get_state(),
                    "dropout": m.dropout.get_state(),
                    "status": m.status,
                    "error": m.error,
                    "fit": fit_state_dict(m.state),
                }
                for m in self.members
            ],
        }

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        for member, saved in zip(self.members, checkpoint["members"], strict=True):
            member.generator.set_state(saved["generator"])
            member.dropout.set_state(saved["dropout"])
            member.status, member.error = saved["status"], saved["error"]
            member.state = fit_state_from_dict(saved["fit"])
        self.keep(list(checkpoint["rows"]))  # the rows the checkpoint holds, then its values
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                parameter.copy_(checkpoint["model"][name])
        if self.rows:
            self.optimizer = self.adam()
            self.optimizer.load_state_dict(checkpoint["optimizer"])
