"""Stage-1 search pieces for Ray Tune: OptunaSearch over a define-by-run space with an RDB study
that survives the driver, a grid sampler fit for ask/tell, the patience stopper and ASHA."""

from __future__ import annotations

import functools
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from awr.sweep.spec import Budget, Search, grid_of
from awr.sweep.trainable import SEARCH_METRIC

MODE = "max"


class AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler without its `study.stop()` after the last point: under Ray Tune's ask/tell
    there is no optimize loop to stop (Tune's num_samples ends the search)."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


class ResumableOptunaSearch(OptunaSearch):
    """OptunaSearch whose restore (`Tuner.restore`) hands back the study's orphans: trials the
    killed driver asked for after its last experiment snapshot. They are failed and their points
    queued again, so each grid point still runs once."""

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        known = {trial.number for trial in self._ot_trials.values()}
        study = self._ot_study
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number in known:
                continue
            study.tell(trial.number, state=TrialState.FAIL)
            if trial.params and isinstance(self._sampler, optuna.samplers.GridSampler):
                study.enqueue_trial(trial.params)


def build_searcher(
    search: Search, backbone: str, storage_url: str, study_name: str, fresh: bool
) -> OptunaSearch:
    """OptunaSearch on `best_valid_ndcg_5` (max) with the study `study_name` in `storage_url`;
    `fresh` drops a study left by a start that never got as far as a Tune snapshot."""
    storage = optuna.storages.RDBStorage(storage_url)
    if fresh and study_name in optuna.get_all_study_names(storage):
        optuna.delete_study(study_name=study_name, storage=storage)
    if search.sampler == "grid":
        sampler: optuna.samplers.BaseSampler = AskTellGridSampler(
            grid_of(search.space, backbone), seed=search.seed
        )
    else:
        sampler = optuna.samplers.TPESampler(seed=search.seed)
    return ResumableOptunaSearch(
        functools.partial(search.space, backbone=backbone),
        metric=SEARCH_METRIC,
        mode=MODE,
        sampler=sampler,
        study_name=study_name,
        storage=storage,
    )


def build_scheduler(search: Search, budget: Budget) -> TrialScheduler | None:
    """ASHA on the running best validation NDCG@5, when the search asks for it."""
    if not search.asha:
        return None
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=SEARCH_METRIC,
        mode=MODE,
        max_t=budget.max_epochs,
        grace_period=min(search.asha_grace, budget.max_epochs),
    )


class PatienceStopper(Stopper):
    """Stop a trial after `patience` epochs without a better validation NDCG@5 (Ray's plateau
    stopper is a different rule). The trainer stops itself by the same rule; this keeps Tune's
    view in step, e.g. for trials that do not stop themselves."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        epoch, best = result.get("epoch"), result.get("best_epoch")
        if epoch is None or best is None:
            return False
        return epoch - best >= self.patience

    def stop_all(self) -> bool:
        return False
