"""run_trial(config) -> TrialResult: fit with validation, then score the test split once with
the best-validation state. The same function serves `orchestrate.py --trial` and Ray Tune.
Trials that differ only in seed can train as one packed model: awr/packed_trial.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from awr.config import TrialConfig
from awr.data.batches import (
    EvalTensors,
    build_eval_tensors,
    build_train_tensors,
    train_row_lengths,
)
from awr.data.datasets import SequenceData, load_dataset
from awr.data.synthetic import planted_dataset
from awr.eval.evaluate import user_ranks
from awr.eval.ranks import UserRanks
from awr.models.contract import Recommender
from awr.models.registry import build_model, count_parameters
from awr.train.length_groups import with_resolved_groups
from awr.train.trainer import EpochCallback, EpochRecord, Trainer

CAPTURE_POSITIONS = 15


@dataclass
class TrialResult:
    config: TrialConfig
    best_epoch: int
    epochs_run: int
    valid: dict[str, float]
    test: dict[str, float]
    num_params: int
    seconds: float
    data_checksum: str
    history: list[EpochRecord] = field(default_factory=list)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    ranks: UserRanks | None = None  # per-user valid and test ranks at the best state

    def summary(self) -> dict[str, Any]:
        """The JSON object printed by `--trial`."""
        return {
            "config": self.config.to_dict(),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "valid": self.valid,
            "test": self.test,
            "num_params": self.num_params,
            "seconds": round(self.seconds, 3),
        }


def load_data(config: TrialConfig, data_dir: str | None = None) -> SequenceData:
    """The dataset by name or path; `synthetic` is the planted-rule dataset used in tests."""
    if config.dataset == "synthetic":
        return planted_dataset(seed=0)
    return load_dataset(config.dataset, data_dir)


def capture_attention(
    model: Recommender, inputs: torch.Tensor, positions: int = CAPTURE_POSITIONS
) -> dict[str, np.ndarray]:
    """Each layer's A and refined A' for the last `positions` positions of `inputs` (B, L):
    arrays `layer{i}_A`, `layer{i}_refined` (the latter only where the layer refines) of shape
    (B, H, positions, positions), from full (L, L) maps of every user (no padding trim)."""
    with model.untrimmed(), model.capturing() as maps, torch.inference_mode():
        model.eval()
        model.score_all(inputs)
    arrays: dict[str, np.ndarray] = {}
    for index, (layer, records) in enumerate(zip(model.attention_layers(), maps, strict=True)):
        attn, refined = records[0]
        arrays[f"layer{index}_A"] = attn[..., -positions:, -positions:].float().cpu().numpy()
        if not layer.refinement.is_identity:
            window = refined[..., -positions:, -positions:]
            arrays[f"layer{index}_refined"] = window.float().cpu().numpy()
    return arrays


def resolve_groups(config: TrialConfig, data: SequenceData) -> TrialConfig:
    """`config` with length_groups 0 (auto) resolved from the training rows of `data`, before
    any tensor is built: the groups its run will use (the trainers resolve them the same way
    from their tensors: awr/train/length_groups.py)."""
    lengths = train_row_lengths(data, config.max_len)
    return with_resolved_groups(config, lengths, config.device)


def planned_length_groups(config: TrialConfig, data_dir: str | None = None) -> int:
    """The length groups `run_trial(config)` will use (loads the data): what a sweep records
    before the run starts."""
    return resolve_groups(config, load_data(config, data_dir)).length_groups


def run_trial(
    config: TrialConfig,
    *,
    data_dir: str | None = None,
    callback: EpochCallback | None = None,
    checkpoint: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = print,
    capture_users: int = 0,
) -> TrialResult:
    """Train `config` with early stopping on validation NDCG@5 and test once at the best epoch.

    `checkpoint` (from a callback's `state()`) resumes an interrupted run exactly;
    `capture_users` > 0 records the attention of that many test users at the best state.
    """
    started = time.perf_counter()
    device = torch.device(config.device)
    data = load_data(config, data_dir)
    train = build_train_tensors(data, config.max_len, device)
    valid = build_eval_tensors(data, config.max_len, "valid", device)
    torch.manual_seed(config.seed)
    model = build_model(config, data.num_items).to(device)
    trainer = Trainer(model, config, train, valid, data.num_items)
    config = trainer.config  # length groups resolved
    if checkpoint is not None:
        trainer.load_state(checkpoint)
    state = trainer.fit(callback, log)
    if state.best_model is not None:
        model.load_state_dict(state.best_model)
    test = build_eval_tensors(data, config.max_len, "test", device)
    ranks = best_state_ranks(model, valid, test, config.eval_batch_size)
    test_metrics = ranks.metrics("test")
    attention = capture_attention(model, test.inputs[:capture_users]) if capture_users else {}
    return TrialResult(
        config=config,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        valid=state.best_valid,
        test=test_metrics,
        num_params=count_parameters(model),
        seconds=time.perf_counter() - started,
        data_checksum=data.checksum,
        history=state.history,
        attention=attention,
        ranks=ranks,
    )


def best_state_ranks(
    model: Recommender, valid: EvalTensors, test: EvalTensors, batch_size: int
) -> UserRanks:
    """Per-user ranks of the model as it is (the best-validation state): the validation ranks
    again (they give back the best epoch's validation metrics) and the test ranks, scored
    once here."""
    if not torch.equal(valid.user_index, test.user_index):
        raise RuntimeError("validation and test evaluate different users")
    return UserRanks(
        user_index=valid.user_index.cpu().numpy(),
        valid_rank=user_ranks(model, valid, batch_size).cpu().numpy(),
        test_rank=user_ranks(model, test, batch_size).cpu().numpy(),
    )
