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


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(epoch: int, seconds: float, best: float = 0.1, best_epoch: int = 1) -> dict:
    return {
        "epoch": epoch,
        "time_total_s": seconds,
        "best_valid_ndcg_5": best,
        "best_epoch": best_epoch,
    }


def test_the_heartbeat_fires_by_time_whatever_the_epochs() -> None:
    from awr.sweep.outlook import PlannedUnit, StageProgress

    clock = FakeClock()
    unit = PlannedUnit("stage 1 d sasrec", "d/sasrec", 4)
    progress = StageProgress(unit, budget=400, slots=2, interval=60.0, clock=clock)
    running = {"t1": "trial t1 (lr=0.001)"}
    assert progress.heartbeats(running) == []  # first seen now
    clock.now += 30.0
    assert progress.heartbeats(running) == []
    clock.now += 29.0
    progress.result("t1", result(3, 50.0, best=0.12, best_epoch=2))
    assert progress.heartbeats(running) == []
    clock.now += 1.0  # 60 s after it was first seen; its report came 1 s ago
    assert progress.heartbeats(running) == [
        "trial t1 (lr=0.001) running: epoch 3/400, best valid ndcg_5 0.1200 @ 2, 51s"
    ]
    clock.now += 30.0
    assert progress.heartbeats(running) == []
    clock.now += 30.0  # no report for a minute (a long epoch): the line comes all the same
    assert progress.heartbeats(running) == [
        "trial t1 (lr=0.001) running: epoch 3/400, best valid ndcg_5 0.1200 @ 2, 1m51s"
    ]
    pack = StageProgress(PlannedUnit("stage 2", "d/sasrec", 2, pack=3), 400, 2, 60.0, None, clock)
    pack.result("p1", {**result(5, 40.0), "members_active": 2})
    clock.now += 60.0
    assert pack.heartbeats({"p1": "trial p1"}) == [
        "trial p1 running: epoch 5/400, best valid ndcg_5 0.1000 @ 1, 2 of 3 seeds training, 1m40s"
    ]


def test_stage_and_sweep_time_left_on_hand_computed_values() -> None:
    from awr.sweep.outlook import PlannedUnit, StageProgress, SweepOutlook

    clock = FakeClock()
    first = PlannedUnit("stage 1 d sasrec", "d/sasrec", 5)
    units = [
        first,
        PlannedUnit("stage 2 d sasrec", "d/sasrec", 2, pack=3),
        PlannedUnit("stage 1 e sasrec", "e/sasrec", 4),
    ]
    outlook = SweepOutlook(units, budget=100, slots=2, clock=clock)
    progress = StageProgress(
        first, budget=100, slots=2, interval=60.0, outlook=outlook, clock=clock
    )
    assert progress.left(["t1"], 4) == (math.inf, math.inf)  # no epoch yet
    for trial in ("t1", "t2", "t3"):  # 10 s to start, 2 s per epoch
        progress.result(trial, result(1, 12.0))
    progress.ended("t1", result(40, 90.0), failed=False)
    progress.ended("t2", result(60, 130.0), failed=False)
    progress.result("t3", result(10, 30.0))
    pace = progress.pace()
    assert pace is not None
    # (78 + 118 + 18) s over (39 + 59 + 9) epochs after the first reports: 2 s per epoch;
    # start-up 12 - 2 = 10 s (5 epochs); the ended trials ran 50 epochs on average
    assert (pace.seconds_per_epoch, pace.startup, pace.epochs) == (2.0, 10.0, 50.0)
    # likely epochs left: t3 50 - 10 = 40, two pending 50 + 5: 150 / 2 slots = 75 -> 150 s
    # at most: 90 + 105 + 105 = 300 / 2 = 150 epochs -> 300 s
    assert progress.left(["t3"], 2) == (150.0, 300.0)
    # later units, per seed 2 s per epoch and 10 s start-up, 50 epochs: the pack of 3 seeds
    # at 6 s per epoch, 2 trials on 2 slots: 50 * 6 + 10 = 310 s (at most 610); cell e
    # (unmeasured) at the latest pace: 4 trials * (50 + 5) / 2 slots * 2 s = 220 s (420)
    assert outlook.left(first.label) == pytest.approx((530.0, 1030.0))
    clock.now += 725.0
    assert progress.outlook_text(["t3"], 2) == (
        "stage 12m05s elapsed, left ~2m30s (at most 5m00s) | "
        "sweep 12m05s elapsed, left ~11m20s (at most 22m10s)"
    )
    # a failed trial's epochs count for the pace, not for the expected epochs
    progress.result("t4", result(1, 12.0))
    progress.ended("t4", result(5, 28.0), failed=True)
    pace = progress.pace()
    assert pace is not None and pace.epochs == 50.0
    assert pace.seconds_per_epoch == (214.0 + 16.0) / (107 + 4)
    # the last unit: no sweep part; one report: start-up and epochs together, 3 s per epoch;
    # none ended: the budget; u1 has 99 epochs left, one pending 100: 100 epochs at 3 s
    last = StageProgress(units[2], 100, 2, 60.0, outlook, clock)
    last.result("u1", result(1, 3.0))
    assert last.outlook_text(["u1"], 1) == "stage 0s elapsed, left ~5m00s"


def test_a_trial_not_yet_reporting_still_beats() -> None:
    from awr.sweep.outlook import PlannedUnit, StageProgress

    clock = FakeClock()
    progress = StageProgress(PlannedUnit("s", "d/b", 1), 400, 1, 60.0, clock=clock)
    assert progress.heartbeats({"t0": "trial t0"}) == []
    clock.now += 60.0
    assert progress.heartbeats({"t0": "trial t0"}) == ["trial t0 running: no epoch yet, 1m00s"]


class FakeTrial:
    def __init__(self, trial_id: str, status: str, lr: float, last: dict | None = None) -> None:
        self.trial_id, self.status, self.config, self.last_result = (
            trial_id,
            status,
            {"lr": lr},
            last,
        )


def test_the_tune_callback_prints_heartbeats_and_finished_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from awr.sweep import progress as module
    from awr.sweep.plan import Unit

    monkeypatch.setattr(module, "WATCHES", {})
    monkeypatch.setattr(module, "OUTLOOK", [])
    monkeypatch.setenv("AWR_HEARTBEAT_SECONDS", "30")
    clock = FakeClock()
    unit = Unit("s", 1, "d", "sasrec", trials=3)
    module.plan_sweep([unit, Unit("s", 2, "d", "sasrec", 2, (1,))], budget=10, slots=2, clock=clock)
    module.watch(module.planned(unit), budget=10, slots=2, clock=clock)
    lines = module.ProgressLines(unit.label, total=3)
    a = FakeTrial("a", "RUNNING", 0.1)
    b = FakeTrial("b", "RUNNING", 0.01)
    lines.on_step_end(iteration=1, trials=[a, b])
    lines.on_trial_result(iteration=2, trials=[a, b], trial=a, result=result(1, 4.0, 0.2, 1))
    clock.now += 30.0
    lines.on_step_end(iteration=3, trials=[a, b])
    beats = capsys.readouterr().out.splitlines()
    assert beats == [
        "[stage 1 d sasrec] trial a (lr=0.1) running: epoch 1/10, best valid ndcg_5 0.2000 @ 1, "
        "34s",
        "[stage 1 d sasrec] trial b (lr=0.01) running: no epoch yet, 30s",
    ]
    a.status, a.last_result = "TERMINATED", result(5, 12.0, 0.3, 4)  # 2 s per epoch after the 1st
    lines.on_trial_complete(iteration=4, trials=[a, b], trial=a)
    (line,) = capsys.readouterr().out.splitlines()
    # b: 5 epochs left, the pending one 5 + 1 (2 s start-up): 6 epochs on 2 slots -> 12 s;
    # at most 10 and 11: 11 epochs -> 22 s. Stage 2's 2 trials of 5 epochs + start-up: 6
    # epochs -> 12 s more (at most 11 epochs -> 22 s)
    assert line == (
        "[stage 1 d sasrec] trial a (lr=0.1): valid ndcg_5 0.3000 after 5 epochs in 12s | "
        "done 1/3 (failed 0), running 1, pending 1 | best valid ndcg_5 0.3000 | "
        "stage 30s elapsed, left ~12s (at most 22s) | sweep 30s elapsed, left ~24s (at most 44s)"
    )
    assert module.completed(unit.label, 3) is False


def test_the_heartbeat_interval_is_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from awr.sweep.progress import HEARTBEAT_SECONDS, heartbeat_seconds
    from awr.sweep.spec import SweepError

    monkeypatch.delenv("AWR_HEARTBEAT_SECONDS", raising=False)
    assert heartbeat_seconds() == HEARTBEAT_SECONDS == 60.0
    monkeypatch.setenv("AWR_HEARTBEAT_SECONDS", "15")
    assert heartbeat_seconds() == 15.0
    monkeypatch.setenv("AWR_HEARTBEAT_SECONDS", "0")
    assert heartbeat_seconds() == math.inf  # none
    for bad in ("soon", "-5", "nan"):
        monkeypatch.setenv("AWR_HEARTBEAT_SECONDS", bad)
        with pytest.raises(SweepError, match="AWR_HEARTBEAT_SECONDS must be seconds"):
            heartbeat_seconds()
