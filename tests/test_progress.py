"""Progress a researcher can plan by: durations as text, the time-left estimates on
hand-computed values, a trial's epoch line, and a sweep's per-trial lines and heartbeats
driven by an injected clock (no sleeping)."""

from __future__ import annotations

import math

import pytest

from awr.eta import fit_epochs_left, format_duration, time_left, trial_epochs_left
from awr.train.trainer import EpochRecord, epoch_line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.4, "0s"),
        (42.4, "42s"),
        (59.6, "1m00s"),
        (725, "12m05s"),
        (3_600, "1h00m"),
        (11_220, "3h07m"),
        (11_249, "3h07m"),  # 3h07m29s: cut to the two largest units
        (187_200, "2d04h"),
        (-3, "0s"),
        (math.inf, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_fit_epochs_left_runs_from_the_earliest_early_stop_to_the_budget() -> None:
    # epoch 37, best at 30, patience 20: stops after 50 unless it improves; budget 400
    assert fit_epochs_left(37, 30, 20, 400) == (13, 363)
    # the early stop lies past the budget: both are the budget
    assert fit_epochs_left(395, 390, 20, 400) == (5, 5)
    # the trainer stops now: patience spent, or the budget reached
    assert fit_epochs_left(50, 30, 20, 400) == (0, 0)
    assert fit_epochs_left(400, 399, 20, 400) == (0, 0)


def test_trial_epochs_left_expects_the_finished_trials_mean() -> None:
    assert trial_epochs_left(10, expected=57.5, budget=400) == 47.5
    assert trial_epochs_left(60, expected=57.5, budget=400) == 1.0  # at least one more
    assert trial_epochs_left(0, expected=400, budget=400) == 400  # nothing finished yet
    assert trial_epochs_left(399, expected=500, budget=400) == 1.0
    assert trial_epochs_left(400, expected=500, budget=400) == 0.0


def test_time_left_shares_the_epochs_over_the_slots() -> None:
    # 2 s per epoch; 60 epochs over 2 slots: 30 epochs each, as long as the longest trial
    assert time_left(2.0, [10, 30, 20], slots=2) == 60.0
    assert time_left(2.0, [10, 10, 10, 10], slots=2) == 40.0
    # one long trial bounds it from below: 101 / 2 = 50.5 < 100
    assert time_left(2.0, [100, 1], slots=2) == 200.0
    # more slots than trials: each trial alone
    assert time_left(3.0, [5, 4], slots=8) == 15.0
    assert time_left(3.0, [], slots=2) == 0.0


def record(epoch: int, best_epoch: int, seconds: float = 2.0) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        train_loss=0.5,
        grad_norm=1.0,
        epoch_seconds=seconds,
        eval_seconds=0.5,
        valid={"ndcg_5": 0.1, "recall_5": 0.2},
        best_epoch=best_epoch,
        best_valid_ndcg_5=0.12,
    )


def test_epoch_line_gains_elapsed_and_time_left() -> None:
    plain = epoch_line(record(37, 30))
    assert "elapsed" not in plain
    # 37 epochs in 92.5 s: 2.5 s each; 13 epochs to the early stop, 363 to the budget
    line = epoch_line(record(37, 30), elapsed=92.5, budget=(20, 400))
    assert line.startswith(plain)
    assert line.endswith("  elapsed 1m32s  left 32s to 15m08s")
    explained = epoch_line(record(37, 30), elapsed=92.5, budget=(20, 400), explain=True)
    assert explained.startswith(line) and "max_epochs 400" in explained
    # one value where the early stop is the budget, 0s when the trainer stops now
    assert epoch_line(record(395, 390), 987.5, (20, 400)).endswith("left 12s")
    assert epoch_line(record(50, 30), 125.0, (20, 400)).endswith("left 0s")
    assert "\r" not in explained and "\n" not in explained


def test_a_trials_log_explains_the_time_left_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trainer.fit's lines, with the epoch's work stubbed (the loop and its lines are real)."""
    from torch import nn

    from awr.config import TrialConfig
    from awr.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", lambda self: (0.5, 1.0))
    scores = iter([0.3, 0.2, 0.1, 0.1])  # best at epoch 1: patience 2 stops after epoch 3
    monkeypatch.setattr(
        trainer_module, "evaluate", lambda *args: {"ndcg_5": next(scores), "recall_5": 0.4}
    )
    trainer = trainer_module.Trainer.__new__(trainer_module.Trainer)
    trainer.config = TrialConfig(dataset="synthetic", max_epochs=400, patience=2)
    trainer.model = nn.Linear(1, 1)
    trainer.valid_tensors = None
    trainer.state = trainer_module.FitState()
    lines: list[str] = []
    state = trainer.fit(log=lines.append)
    assert state.epoch == 3 and [line.split()[1] for line in lines] == ["1", "2", "3"]
    assert all("  elapsed " in line and "  left " in line for line in lines)
    assert "max_epochs 400" in lines[0] and "max_epochs" not in lines[1]
    assert " to " in lines[1].split("left")[1]  # a range: early stop after 3, or 400
    assert lines[-1].endswith("left 0s")  # patience spent: the trainer stops now
