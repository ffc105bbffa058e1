"""Packed seeds: each member of a pack reproduces its unpacked trial (dropout 0) for every
backbone x mechanism pair; dropout draws are each member's own; early stopping and divergence
are per member; a pack resumed from a mid-pack checkpoint finishes exactly as an uninterrupted
one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_trial import MECHANISM_PAIRS

import awr.models.packed
import awr.packed_trial
import awr.train.packed
import awr.trial
from awr.config import ConfigError, TrialConfig
from awr.data.synthetic import random_sequences
from awr.models.packed import stack_members
from awr.models.registry import build_model
from awr.packed_trial import MemberFailure, run_packed_trials
from awr.trial import TrialResult, run_trial

SEEDS = (1, 2)
EXACT = dict(dropout=0.0, attn_dropout=0.0)


def varied_data() -> object:
    """64 users of lengths 4..30 over 40 items: with max_len 12, batches have padding columns
    to trim and length groups of different lengths."""
    lengths = np.random.default_rng(3).integers(4, 31, size=64)
    return random_sequences("varied", lengths, 40, seed=5, source="test")


@pytest.fixture
def varied(monkeypatch: pytest.MonkeyPatch) -> None:
    data = varied_data()
    for module in (awr.trial, awr.packed_trial):
        monkeypatch.setattr(module, "load_data", lambda config, data_dir=None: data)


def small(**changes: object) -> TrialConfig:
    values = dict(
        dataset="varied", hidden_size=16, max_len=12, num_heads=2, batch_size=16, lr=5e-3,
        max_epochs=3, patience=3, length_groups=2, eval_batch_size=32,
    )  # fmt: skip
    return TrialConfig(**{**values, **changes})


def assert_same_trial(packed: TrialResult, alone: TrialResult) -> None:
    assert packed.config == alone.config
    assert [r.train_loss for r in packed.history] == pytest.approx(
        [r.train_loss for r in alone.history], rel=1e-5
    )
    assert [r.grad_norm for r in packed.history] == pytest.approx(
        [r.grad_norm for r in alone.history], rel=1e-4
    )
    for mine, theirs in zip(packed.history, alone.history, strict=True):
        assert mine.valid == pytest.approx(theirs.valid, abs=1e-6)
    assert (packed.best_epoch, packed.epochs_run) == (alone.best_epoch, alone.epochs_run)
    assert packed.valid == pytest.approx(alone.valid, abs=1e-6)
    assert packed.test == pytest.approx(alone.test, abs=1e-6)
    assert packed.num_params == alone.num_params
    assert packed.ranks is not None and alone.ranks is not None
    assert np.array_equal(packed.ranks.test_rank, alone.ranks.test_rank)


PAIRS = [(b, m, "bce") for b, m in MECHANISM_PAIRS] + [
    ("sasrec", "value", "ce"),
    ("stosa", "stochastic", "ce"),
]


@pytest.mark.parametrize("backbone,mechanism,loss", PAIRS)
def test_each_member_is_its_unpacked_trial(varied, backbone, mechanism, loss) -> None:
    config = small(backbone=backbone, mechanism=mechanism, loss=loss, **EXACT)
    packed = run_packed_trials([config.replace(seed=s) for s in SEEDS], log=None)
    for seed, outcome in zip(SEEDS, packed, strict=True):
        assert isinstance(outcome, TrialResult)
        assert_same_trial(outcome, run_trial(config.replace(seed=seed), log=None))
    assert packed[0].test != packed[1].test  # distinct members, not one model twice


def test_the_variants_pack_too(varied) -> None:
    """Per-head matrices, the learned mix and the released STOSA code."""
    for changes in (
        dict(backbone="sasrec", mechanism="additive", refine_per_head=True, additive_mix="learned"),
        dict(backbone="stosa", mechanism="value", stosa_released_code=True, num_layers=2),
    ):
        config = small(**changes, **EXACT, max_epochs=2)
        first = run_packed_trials([config.replace(seed=s) for s in SEEDS], log=None)[0]
        assert_same_trial(first, run_trial(config.replace(seed=SEEDS[0]), log=None))


def test_a_member_draws_its_unpacked_trials_dropout_masks() -> None:
    """On the synthetic data every row is full (no column to trim), so with one length group a
    member's activations have its lone trial's shapes: its own generator then draws the very
    masks the lone trial draws, whatever its pack mates."""
    config = TrialConfig(
        dataset="synthetic", backbone="stosa", mechanism="simple", hidden_size=16, max_len=10,
        num_heads=2, batch_size=64, dropout=0.3, attn_dropout=0.2, max_epochs=2, length_groups=1,
    )  # fmt: skip
    alone = run_trial(config.replace(seed=1), log=None)
    with_two = run_packed_trials([config.replace(seed=s) for s in (1, 2)], log=None)
    with_three = run_packed_trials([config.replace(seed=s) for s in (3, 1)], log=None)[1]
    assert_same_trial(with_two[0], alone)
    assert_same_trial(with_three, alone)
    no_dropout = run_trial(config.replace(seed=1, dropout=0.0, attn_dropout=0.0), log=None)
    assert alone.history[0].train_loss != pytest.approx(no_dropout.history[0].train_loss)


def stopping_configs() -> list[TrialConfig]:
    """Patience 1 at a small learning rate: the seeds stop at different epochs."""
    config = small(backbone="sasrec", mechanism="simple", max_epochs=8, patience=1, lr=2e-3)
    return [config.replace(seed=s, **EXACT) for s in (1, 2, 3)]


def test_early_stopping_is_per_member(varied) -> None:
    configs = stopping_configs()
    packed = run_packed_trials(configs, log=None)
    alone = [run_trial(config, log=None) for config in configs]
    for mine, theirs in zip(packed, alone, strict=True):
        assert_same_trial(mine, theirs)
    stops = [outcome.epochs_run for outcome in packed]
    assert len(set(stops)) > 1 and max(stops) < 8, stops  # they stopped apart, on patience


def test_a_diverging_member_fails_alone(varied, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the second epoch on, member 1's loss is multiplied by NaN: its parameters turn NaN
    and it fails with the lone trial's error; the others still reproduce their lone trials."""
    real = awr.train.packed.packed_loss
    calls = {"n": 0}
    steps_per_epoch = 4 * 2  # 64 rows / batch 16, two length groups

    def poisoned(model, *args):
        loss = real(model, *args)
        calls["n"] += 1
        if calls["n"] > steps_per_epoch and len(loss) == 3:  # until member 1 leaves
            factor = torch.ones_like(loss)
            factor[1] = float("nan")
            loss = loss * factor
        return loss

    monkeypatch.setattr(awr.train.packed, "packed_loss", poisoned)
    config = small(backbone="sasrec", mechanism="value", **EXACT)
    outcomes = run_packed_trials([config.replace(seed=s) for s in (1, 2, 3)], log=None)
    failed = outcomes[1]
    assert isinstance(failed, MemberFailure)
    assert failed.error == "TrainingDiverged: training loss is nan at epoch 2"
    assert [r.epoch for r in failed.history] == [1]
    monkeypatch.setattr(awr.train.packed, "packed_loss", real)
    for seed, outcome in ((1, outcomes[0]), (3, outcomes[2])):
        assert_same_trial(outcome, run_trial(config.replace(seed=seed), log=None))


class Saver:
    """A PackCallback that keeps the checkpoint of one pack epoch."""

    def __init__(self, at: int) -> None:
        self.at, self.saved, self.ended = at, None, []

    def member_epoch(self, member, record) -> None:
        pass

    def member_end(self, member, outcome) -> None:
        self.ended.append(member)

    def pack_epoch(self, epoch, state) -> None:
        if epoch.epoch == self.at:
            self.saved = state()


def test_resume_mid_pack_is_exact(varied) -> None:
    configs = stopping_configs()
    full = run_packed_trials(configs, log=None)
    first_stop = min(outcome.epochs_run for outcome in full)
    saver = Saver(at=first_stop)  # after one member has left the pack
    run_packed_trials(configs, callback=saver, log=None)
    assert saver.saved is not None and saver.saved["trainer"]["rows"] != [0, 1, 2]
    saver.saved = torch.load(save_to_bytes(saver.saved), weights_only=False)  # as Tune would
    later = Saver(at=-1)
    resumed = run_packed_trials(configs, checkpoint=saver.saved, callback=later, log=None)
    for mine, theirs in zip(resumed, full, strict=True):
        assert [r.train_loss for r in mine.history] == [r.train_loss for r in theirs.history]
        assert mine.test == theirs.test and mine.best_epoch == theirs.best_epoch
    assert set(later.ended) == {i for i, o in enumerate(full) if o.epochs_run > first_stop}


def save_to_bytes(state: dict) -> object:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_a_pack_is_one_config_with_distinct_seeds() -> None:
    config = small()
    with pytest.raises(ConfigError, match="differ only in seed.*lr"):
        run_packed_trials([config.replace(seed=1), config.replace(seed=2, lr=1.0)], log=None)
    with pytest.raises(ConfigError, match="distinct"):
        run_packed_trials([config.replace(seed=1), config.replace(seed=1)], log=None)


def test_stacked_parameters_are_the_members_own() -> None:
    config = small(mechanism="simple")
    models = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(build_model(config, 40))
    packed = stack_members(models)
    for name, value in packed.named_parameters():
        for k, model in enumerate(models):
            assert torch.equal(value[k], model.get_parameter(name)), name


def test_a_packed_lookups_sparse_gradient_is_each_members_own() -> None:
    """The packed lookup's sparse gradient, made dense, is each member's nn.Embedding gradient
    with padding_idx 0: repeated ids summed, row 0 zero, other members' rows untouched."""
    torch.manual_seed(0)
    tables = torch.randn(3, 9, 4)
    ids = torch.tensor([[[0, 2, 2], [5, 0, 1]], [[3, 3, 3], [0, 0, 8]], [[1, 2, 0], [7, 7, 0]]])
    upstream = torch.randn(3, 2, 3, 4)
    packed = torch.nn.Embedding(9, 4)
    packed.weight = torch.nn.Parameter(tables.clone())
    out = awr.models.packed.embedding(packed, ids)
    (out * upstream).sum().backward()
    assert packed.weight.grad.is_sparse
    dense = packed.weight.grad.to_dense()
    for k in range(3):
        alone = torch.nn.Embedding(9, 4, padding_idx=0)
        alone.weight = torch.nn.Parameter(tables[k].clone())
        assert torch.equal(out[k], alone(ids[k]))
        (alone(ids[k]) * upstream[k]).sum().backward()
        torch.testing.assert_close(dense[k], alone.weight.grad, rtol=0, atol=1e-6)
    assert torch.equal(dense[:, 0], torch.zeros(3, 4))
    assert torch.equal(dense[0, 3], torch.zeros(4))  # member 0 never looked row 3 up
    with torch.no_grad():  # evaluation: the plain flattened lookup, same rows
        assert torch.equal(awr.models.packed.embedding(packed, ids), out.detach())
