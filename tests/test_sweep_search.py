"""Stage-1 search pieces without a Ray cluster: the grid is covered once through OptunaSearch's
ask/tell, the study lives in an RDB store, a restore after a kill re-queues the points the
killed driver had handed out unrecorded, and the patience stopper's rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import AsyncHyperBandScheduler

from awr.sweep.search import PatienceStopper, build_scheduler, build_searcher
from awr.sweep.spec import Budget, Search, grid_of, grid_points

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def space(trial: Any, backbone: str) -> None:
    trial.suggest_categorical("lr", [1e-3, 1e-2])
    trial.suggest_categorical("dropout", [0.1, 0.3])
    if backbone == "stosa":
        trial.suggest_categorical("pvn_weight", [0.005, 0.1])


def key(config: dict[str, Any]) -> tuple:
    return tuple(sorted(config.items()))


def searcher_for(tmp_path: Path, fresh: bool = True, backbone: str = "sasrec"):
    url = "sqlite:///" + str(tmp_path / "optuna.db")
    return build_searcher(Search(space), backbone, url, "s-stage1-d-" + backbone, fresh=fresh)


def test_grid_sampler_covers_the_define_by_run_grid_once(tmp_path: Path) -> None:
    searcher = searcher_for(tmp_path, backbone="stosa")
    configs = [searcher.suggest(f"t{i}") for i in range(8)]
    expected = grid_points(grid_of(space, "stosa"))
    assert sorted(map(key, configs)) == sorted(map(key, expected))
    for index, config in enumerate(configs):
        searcher.on_trial_complete(f"t{index}", {"best_valid_ndcg_5": config["lr"]})
    study = optuna.load_study(study_name="s-stage1-d-stosa", storage=searcher._storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 8
    assert study.best_params["lr"] == 1e-2


def test_restore_requeues_points_handed_out_after_the_last_snapshot(tmp_path: Path) -> None:
    searcher = searcher_for(tmp_path)
    first = [searcher.suggest("t0"), searcher.suggest("t1")]
    searcher.save(str(tmp_path / "searcher.pkl"))  # Tune's last snapshot before the kill
    orphan = searcher.suggest("t2")  # handed out, never recorded by Tune

    restored = searcher_for(tmp_path, fresh=False)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for index in range(2):
        restored.on_trial_complete(f"t{index}", {"best_valid_ndcg_5": 0.1})
    rest = [restored.suggest("t2b"), restored.suggest("t3")]
    assert key(orphan) in map(key, rest)
    covered = sorted(map(key, first + rest))
    assert covered == sorted(map(key, grid_points(grid_of(space, "sasrec"))))


def test_a_fresh_start_drops_a_study_left_without_a_snapshot(tmp_path: Path) -> None:
    searcher_for(tmp_path).suggest("t0")
    again = searcher_for(tmp_path, fresh=True)
    study = optuna.load_study(study_name="s-stage1-d-sasrec", storage=again._storage)
    assert study.trials == []


def test_patience_stopper_stops_after_patience_epochs_without_improvement() -> None:
    stopper = PatienceStopper(patience=3)
    assert not stopper("t", {"epoch": 5, "best_epoch": 3})
    assert stopper("t", {"epoch": 6, "best_epoch": 3})
    assert not stopper("t", {"training_iteration": 1})
    assert not stopper.stop_all()


def test_asha_only_when_asked() -> None:
    budget = Budget(max_epochs=50, patience=10)
    assert build_scheduler(Search(space), budget) is None
    asha = build_scheduler(Search(space, asha=True, asha_grace=4), budget)
    assert isinstance(asha, AsyncHyperBandScheduler)
    assert asha.metric == "best_valid_ndcg_5"
