"""run_packed_trials(configs) -> one outcome per config: trials that differ only in seed,
trained as one packed model (awr/train/packed.py), each member as `run_trial` runs its config
alone (same init, batches, negatives, early stopping, best state; test scored once at its own
best epoch), with its own TrialResult, or a MemberFailure when it diverged alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from awr.config import ConfigError, TrialConfig
from awr.data.batches import (
    EvalTensors,
    TrainTensors,
    build_eval_tensors,
    build_train_tensors,
)
from awr.models.registry import build_model, count_parameters
from awr.train.packed import FAILED, PackedTrainer, PackEpoch
from awr.train.trainer import EpochRecord, epoch_line
from awr.trial import TrialResult, best_state_ranks, capture_attention, load_data


@dataclass
class MemberFailure:
    """A packed member that failed alone (its loss diverged); the others went on."""

    config: TrialConfig
    error: str  # "TrainingDiverged: training loss is nan at epoch 3", as a lone trial fails
    history: list[EpochRecord] = field(default_factory=list)


Outcome = TrialResult | MemberFailure


class PackCallback(Protocol):
    """What a pack reports as it trains (members are indices into the configs)."""

    def member_epoch(self, member: int, record: EpochRecord) -> None:
        """After each epoch of each member."""

    def member_end(self, member: int, outcome: Outcome) -> None:
        """When a member leaves the pack: its test scored (or its failure)."""

    def pack_epoch(self, epoch: PackEpoch, state: Callable[[], dict[str, Any]]) -> None:
        """After each epoch of the pack; `state()` is a checkpoint for `run_packed_trials`."""


def check_pack(configs: Sequence[TrialConfig]) -> None:
    """A pack is one configuration with distinct seeds; anything else is a ConfigError."""
    if not configs:
        raise ConfigError("a pack needs at least one config")
    seeds = [config.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"a pack's seeds must be distinct, got {seeds}")
    first = configs[0].replace(seed=0)
    for config in configs[1:]:
        if config.replace(seed=0) != first:
            changed = [
                k for k, v in config.to_dict().items() if k != "seed" and v != getattr(first, k)
            ]
            raise ConfigError(f"packed trials may differ only in seed; these differ too: {changed}")


def dropout_generator(device: torch.device, seed: int) -> torch.Generator:
    """A member's dropout generator: where its unpacked trial's global RNG is once the model
    is built (on CPU the state after the init; on CUDA, whose RNG the init does not touch,
    seeded with `seed`)."""
    if device.type == "cpu":
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
        return generator
    return torch.Generator(device=device).manual_seed(seed)


def packed_trainer(
    configs: list[TrialConfig], train: TrainTensors, valid: EvalTensors, num_items: int
) -> PackedTrainer:
    """The pack's trainer on the tensors' device, each member initialised as `run_trial`
    initialises its config (`torch.manual_seed(seed)`, then `build_model`)."""
    check_pack(configs)
    device = train.inputs.device
    models, dropout = [], []
    for config in configs:
        torch.manual_seed(config.seed)
        models.append(build_model(config, num_items).to(device))
        dropout.append(dropout_generator(device, config.seed))
    return PackedTrainer(models, configs, dropout, train, valid, num_items)


def run_packed_trials(
    configs: list[TrialConfig],
    *,
    data_dir: str | None = None,
    callback: PackCallback | None = None,
    checkpoint: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = print,
    capture_users: int = 0,
) -> list[Outcome]:
    """Trials that differ only in seed as one packed model; each member as `run_trial` would
    run its config alone: the same init, batches, negatives, early stopping and best state,
    its test scored once at its own best epoch. Returns one outcome per config, in order.

    `checkpoint` (a `state()` from `callback.pack_epoch`) resumes every member exactly.
    `seconds` of a member: its share of the setup and of each epoch's training, plus its own
    validation passes and test."""
    started = time.perf_counter()
    device = torch.device(configs[0].device)
    check_pack(configs)
    data = load_data(configs[0], data_dir)
    train = build_train_tensors(data, configs[0].max_len, device)
    valid = build_eval_tensors(data, configs[0].max_len, "valid", device)
    test = build_eval_tensors(data, configs[0].max_len, "test", device)
    trainer = packed_trainer(configs, train, valid, data.num_items)
    configs = [member.config for member in trainer.members]  # length groups resolved
    outcomes: dict[int, Outcome] = {}
    if checkpoint is not None:
        trainer.load_state(checkpoint["trainer"])
        outcomes = dict(checkpoint["outcomes"])
    setup = (time.perf_counter() - started) / len(configs)

    def on_epoch(member: int, record: EpochRecord) -> None:
        if log is not None:
            log(f"seed {configs[member].seed}  {epoch_line(record)}")
        if callback is not None:
            callback.member_epoch(member, record)

    def on_end(member: int) -> None:
        state = trainer.members[member]
        if state.status == FAILED:
            outcome: Outcome = MemberFailure(
                configs[member], state.error or "", state.state.history
            )
        else:
            outcome = score_member(trainer, member, valid, test, capture_users, data.checksum)
            outcome.seconds += setup
        outcomes[member] = outcome
        if log is not None:
            log(f"seed {configs[member].seed}  {describe_outcome(outcome)}")
        if callback is not None:
            callback.member_end(member, outcome)

    def pack_epoch(epoch: PackEpoch) -> None:
        if callback is not None:
            callback.pack_epoch(
                epoch, lambda: {"trainer": trainer.checkpoint(), "outcomes": dict(outcomes)}
            )

    trainer.fit(on_epoch, on_end, pack_epoch)
    return [outcomes[member] for member in range(len(configs))]


def score_member(
    trainer: PackedTrainer,
    member: int,
    valid: EvalTensors,
    test: EvalTensors,
    capture_users: int,
    checksum: str,
) -> TrialResult:
    """A stopped member's result: its best state scored on the test split once."""
    started = time.perf_counter()
    state, config = trainer.members[member].state, trainer.members[member].config
    model = trainer.evaluation_model(member, best=True)
    ranks = best_state_ranks(model, valid, test, config.eval_batch_size)
    attention = capture_attention(model, test.inputs[:capture_users]) if capture_users else {}
    spent = sum(r.epoch_seconds + r.eval_seconds for r in state.history)
    return TrialResult(
        config=config,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        valid=state.best_valid,
        test=ranks.metrics("test"),
        num_params=count_parameters(model),
        seconds=spent + time.perf_counter() - started,
        data_checksum=checksum,
        history=state.history,
        attention=attention,
        ranks=ranks,
    )


def describe_outcome(outcome: Outcome) -> str:
    if isinstance(outcome, MemberFailure):
        return f"FAILED: {outcome.error}"
    return (
        f"done: best epoch {outcome.best_epoch} of {outcome.epochs_run}, test ndcg_5 "
        f"{outcome.test['ndcg_5']:.4f}"
    )
