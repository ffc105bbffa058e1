"""End to end: seeded reproducibility, learnability on the planted dataset, the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from awr.config import TrialConfig
from awr.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    dataset="synthetic",
    hidden_size=32,
    max_len=20,
    num_heads=2,
    num_layers=1,
    dropout=0.1,
    attn_dropout=0.1,
    lr=5e-3,
    batch_size=64,
    patience=5,
)


def tiny(**changes) -> TrialConfig:
    return TrialConfig(**{**TINY, **changes})


@pytest.mark.parametrize("backbone,mechanism", [("sasrec", "simple"), ("stosa", "stochastic")])
def test_two_seeded_runs_are_identical(backbone, mechanism):
    config = tiny(backbone=backbone, mechanism=mechanism, max_epochs=2)
    first = run_trial(config, log=None)
    second = run_trial(config, log=None)
    assert first.test == second.test
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]
    other = run_trial(config.replace(seed=7), log=None)
    assert [r.train_loss for r in other.history] != [r.train_loss for r in first.history]


def test_checkpoint_resume_is_exact():
    config = tiny(max_epochs=3)
    full = run_trial(config, log=None)
    saved = {}

    def keep_epoch_one(record, state):
        if record.epoch == 1:
            saved.update(state())

    run_trial(config.replace(max_epochs=1), callback=keep_epoch_one, log=None)
    resumed = run_trial(config, checkpoint=saved, log=None)
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in full.history]
    assert resumed.test == full.test


MECHANISM_PAIRS = [("sasrec", m) for m in ("none", "simple", "value", "additive")] + [
    ("stosa", m) for m in ("none", "simple", "value", "additive", "stochastic")
]


@pytest.mark.parametrize("backbone,mechanism", MECHANISM_PAIRS)
def test_learns_the_planted_rule(backbone, mechanism):
    result = run_trial(tiny(backbone=backbone, mechanism=mechanism, max_epochs=12), log=None)
    assert result.test["recall_1"] > 0.9, result.test


def test_early_stopping_selects_on_validation_only():
    result = run_trial(tiny(max_epochs=6, patience=1, lr=1e-6), log=None)
    best = max(result.history, key=lambda r: r.valid["ndcg_5"])
    assert result.best_epoch == best.epoch
    assert result.valid == best.valid
    assert result.epochs_run <= 6


def test_ranks_give_back_the_best_valid_and_the_test_metrics(tmp_path):
    from awr.eval.ranks import UserRanks

    result = run_trial(tiny(max_epochs=3), log=None)
    ranks = result.ranks
    assert ranks is not None and len(ranks.user_index) == 200  # every synthetic user
    assert ranks.metrics("test") == pytest.approx(result.test, abs=1e-12)
    assert ranks.metrics("valid") == pytest.approx(result.valid, abs=1e-12)  # the best epoch's
    loaded = UserRanks.load(ranks.save(tmp_path / "ranks.npz"))
    for name in ("user_index", "valid_rank", "test_rank"):
        assert getattr(loaded, name).tolist() == getattr(ranks, name).tolist()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "orchestrate.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_cli_trial_one_epoch_on_ml1m(data_dir, tmp_path):
    out = tmp_path / "result.json"
    proc = run_cli(
        "--trial",
        "dataset=ml-1m",
        "max_epochs=1",
        "max_len=50",
        "hidden_size=32",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("epoch    1")
    summary = json.loads(lines[-1])
    assert summary == json.loads(out.read_text())
    ranks_path = Path(summary["ranks_path"])
    assert ranks_path == tmp_path / "result.ranks.npz" and ranks_path.stat().st_size < 60_000
    assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    assert summary["config"]["max_len"] == 50
    assert 0.0 < summary["test"]["ndcg_5"] < 1.0
    assert summary["num_params"] > 3416 * 32


def test_cli_rejects_unknown_key_and_bad_type():
    proc = run_cli("--trial", "hiden_size=64")
    assert proc.returncode == 2
    assert "unknown key 'hiden_size'" in proc.stderr and "hidden_size" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("--trial", "max_len=long")
    assert proc.returncode == 2 and "max_len expects int" in proc.stderr
    proc = run_cli("--trial", "backbone=sasrec", "mechanism=stochastic")
    assert proc.returncode == 2 and "valid" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_data_stats_ml1m(data_dir):
    proc = run_cli("--data-stats", "ml-1m", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    assert "6,040" in proc.stdout and "3,416" in proc.stdout and "999,611" in proc.stdout
