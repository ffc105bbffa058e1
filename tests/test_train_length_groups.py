"""Length groups: a training batch run as sub-batches sorted by length gives the one-batch
gradient (checked against the plain path without dropout), and the sub-batches really skip
padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awr.config import ConfigError, TrialConfig
from awr.data.batches import (
    build_eval_tensors,
    build_train_tensors,
    split_by_length,
    train_row_lengths,
)
from awr.data.datasets import load_dataset
from awr.data.synthetic import random_sequences
from awr.models.attention import padding_columns
from awr.models.registry import build_model
from awr.train.length_groups import (
    auto_length_groups,
    computed_positions,
    group_costs,
    resolve_length_groups,
)
from awr.train.trainer import Trainer
from awr.trial import planned_length_groups, run_trial

NUM_ITEMS = 40
MAX_LEN = 24


def varied_data() -> object:
    """48 users with lengths 3..50: short rows leave most of a max_len-24 window padded."""
    lengths = np.random.default_rng(0).integers(3, 51, size=48)
    return random_sequences("varied", lengths, NUM_ITEMS, seed=1, source="test")


def test_split_by_length_sorts_stably_and_cuts_near_equal_parts() -> None:
    lengths = torch.tensor([5, 1, 3, 1, 4])
    parts = split_by_length(lengths, 2)
    assert [p.tolist() for p in parts] == [[1, 3, 2], [4, 0]]
    single = split_by_length(lengths, 8)  # more groups than rows: no empty parts
    assert [p.tolist() for p in single] == [[1], [3], [2], [4], [0]]
    assert [p.tolist() for p in split_by_length(lengths, 1)] == [[1, 3, 2, 4, 0]]


def test_computed_positions_by_hand() -> None:
    lengths = np.array([10, 1, 1, 1])
    assert computed_positions(lengths, 1) == 4 * 10
    assert computed_positions(lengths, 2) == 2 * 1 + 2 * 10  # parts [1, 1], [1, 10]
    assert computed_positions(lengths, 4) == 1 + 1 + 1 + 10
    assert computed_positions(lengths, 8) == 13  # no more parts than rows


def test_auto_groups_weigh_saved_padding_against_sub_batches() -> None:
    # 60 rows of 2 and 4 of 50, one batch of 64: cost = positions + groups * 400 on CPU
    lengths = np.array([2] * 60 + [50] * 4)
    costs = group_costs(lengths, 64, 50, "cpu")
    assert costs[1] == 64 * 50 + 400
    assert costs[2] == 32 * 2 + 32 * 50 + 2 * 400  # 2464
    assert costs[4] == 3 * 16 * 2 + 16 * 50 + 4 * 400  # 2496
    assert costs[8] == 7 * 8 * 2 + 8 * 50 + 8 * 400  # 3712
    assert auto_length_groups(lengths, 64, 50, "cpu") == 2
    assert auto_length_groups(lengths, 64, 50, torch.device("cuda")) == 1  # 25,000 per part
    assert auto_length_groups(np.full(600, 18), 64, 20, "cpu") == 1  # nothing to save
    assert auto_length_groups(np.full(10, 100) // np.arange(1, 11), 64, 5, "cpu") == 1  # capped
    assert max(group_costs(lengths, 5, 50, "cpu")) == 4  # never more groups than rows
    assert auto_length_groups(np.array([], dtype=np.int64), 64, 50, "cpu") == 1


def test_explicit_groups_are_kept_and_bad_values_are_refused() -> None:
    lengths = np.array([2] * 60 + [50] * 4)
    assert resolve_length_groups(0, "cpu", 64, lengths, 50) == 2
    assert resolve_length_groups(3, torch.device("cuda"), 256, lengths, 50) == 3
    with pytest.raises(ConfigError, match="length_groups must be in"):
        TrialConfig(length_groups=-1)
    with pytest.raises(ConfigError, match="batch_size=16"):
        TrialConfig(batch_size=16, length_groups=17)


def test_auto_on_the_real_datasets(data_dir) -> None:
    """The choices the rule's docstring states (batch 256)."""
    for name, max_len, expected in (("ml-1m", 200, 8), ("ml-1m", 50, 1), ("beauty", 50, 4)):
        lengths = train_row_lengths(load_dataset(name, str(data_dir)), max_len)
        assert auto_length_groups(lengths, 256, max_len, "cpu") == expected, (name, max_len)


def test_row_lengths_and_the_trainer_agree_with_the_tensors() -> None:
    data = varied_data()
    train = build_train_tensors(data, MAX_LEN, "cpu")
    lengths = train_row_lengths(data, MAX_LEN)
    assert lengths.tolist() == (train.targets > 0).sum(1).tolist()
    config = TrialConfig(hidden_size=16, max_len=MAX_LEN, batch_size=16)
    trainer = Trainer(build_model(config, NUM_ITEMS), config, train, None, NUM_ITEMS)
    assert trainer.length_groups == auto_length_groups(lengths, 16, MAX_LEN, "cpu")


def batch_gradients(config: TrialConfig) -> tuple[float, dict[str, torch.Tensor]]:
    data = varied_data()
    train = build_train_tensors(data, config.max_len, "cpu")
    valid = build_eval_tensors(data, config.max_len, "valid")
    torch.manual_seed(0)
    model = build_model(config, data.num_items)
    trainer = Trainer(model, config, train, valid, data.num_items)
    model.train()
    rows = torch.arange(train.inputs.shape[0])
    negatives = torch.randint(1, NUM_ITEMS + 1, train.targets.shape, generator=torch.Generator())
    negatives = negatives.masked_fill(train.targets == 0, 0)
    loss = trainer.backward(rows, negatives)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return float(loss), grads


@pytest.mark.parametrize(
    "backbone,mechanism,loss",
    [("sasrec", "none", "bce"), ("sasrec", "value", "ce"), ("stosa", "stochastic", "bce")],
)
def test_grouped_batch_gives_the_one_batch_loss_and_gradient(
    backbone: str, mechanism: str, loss: str
) -> None:
    config = TrialConfig(
        dataset="synthetic", backbone=backbone, mechanism=mechanism, loss=loss,
        hidden_size=16, num_heads=2, max_len=MAX_LEN, batch_size=64, dropout=0.0,
        attn_dropout=0.0, length_groups=1,
    )  # fmt: skip
    plain_loss, plain = batch_gradients(config)
    grouped_loss, grouped = batch_gradients(config.replace(length_groups=4))
    assert grouped_loss == pytest.approx(plain_loss, rel=1e-5)
    assert plain.keys() == grouped.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(grouped[name], grad, rtol=1e-4, atol=1e-7, msg=name)


def test_sorted_parts_skip_padding_the_whole_batch_cannot() -> None:
    train = build_train_tensors(varied_data(), MAX_LEN, "cpu")
    assert padding_columns(train.inputs) == 0  # some row fills the whole window
    counts = (train.targets > 0).sum(1)
    skipped = [padding_columns(train.inputs[part]) for part in split_by_length(counts, 4)]
    assert skipped[0] >= MAX_LEN // 2  # the shortest quarter of rows: mostly padding skipped
    assert skipped == sorted(skipped, reverse=True)


def test_a_trial_reports_the_groups_it_used_not_auto() -> None:
    config = TrialConfig(dataset="synthetic", hidden_size=16, max_len=10, max_epochs=1)
    assert config.length_groups == 0
    assert planned_length_groups(config) == 1  # every planted row has the same length
    assert run_trial(config, log=None).config.length_groups == 1
    assert run_trial(config.replace(length_groups=2), log=None).config.length_groups == 2
