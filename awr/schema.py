"""The names a sweep leaves in MLflow and in its files, declared once: the sweep layer writes
them (awr/tracking.py), the analysis package and the tests read them from here.

- The experiment: named after the sweep, tag `mlflow.experimentKind=custom_model_development`
  (MLflow 3's UI then opens it as model training).
- Run kinds (tag `awr.kind`): `parent`, a stage x dataset x backbone, tagged PARENT_TAGS;
  `trial`, one trial, tagged TRIAL_TAGS and `mlflow.parentRunId` (members of a pack of seeds
  share their Ray trial id and add `pack_seeds`, e.g. "1,2,3"); `report`, a `--report` run.
- Params: every TrialConfig field (awr/config.py) as `str(value)`.
- Metrics: a metric *name* (awr/eval/metrics.py: `ndcg_5`, `recall_1`, `mrr`, ...) has one key
  per form (`metric_key`): `valid/<m>` per epoch at step=epoch, `best_valid_<m>` the running best
  each epoch reports to Tune, and at the end `best_valid/<m>` and `test/<m>` at the
  best-validation state; `epochs.csv` has a column `valid_<m>`. Besides: EPOCH_SCALARS per epoch,
  FINAL_SCALARS once.
- Artifacts: config.json, epochs.csv, attention.npz, ranks.npz (awr/eval/ranks.py).
- Statuses: a run ends FINISHED, FAILED (tag `error`) or KILLED.
"""

from __future__ import annotations

# --- the experiment ---------------------------------------------------------------------------
EXPERIMENT_KIND = "mlflow.experimentKind"  # the UI's "Machine learning" / "GenAI apps" choice
MODEL_TRAINING = "custom_model_development"
UNCHOSEN_KINDS = ("no_inferred_type",)  # and any "..._inferred": the UI's guesses

# --- runs: kinds, statuses, tags --------------------------------------------------------------
KIND = "awr.kind"
PARENT, TRIAL, REPORT = "parent", "trial", "report"
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
PARENT_RUN = "mlflow.parentRunId"
RAY_TRIAL_ID = "ray_trial_id"
PACK_SEEDS = "pack_seeds"
ERROR = "error"  # a FAILED run's error message (its last ERROR_LIMIT characters)
ERROR_LIMIT = 5000
BEST_RAY_TRIAL_ID = "best_ray_trial_id"  # on a stage-1 parent: the trial that scored best
PARENT_TAGS: tuple[str, ...] = ("sweep", "stage", "dataset", "backbone")
TRIAL_TAGS: tuple[str, ...] = (
    *PARENT_TAGS,
    "mechanism",
    "seed",
    "git_commit",
    "data_checksum",
    RAY_TRIAL_ID,
)

# --- metrics ----------------------------------------------------------------------------------
VALID, TEST, BEST, RUNNING_BEST, CSV = "valid", "test", "best", "running_best", "csv"
METRIC_FORMS = {
    VALID: "valid/{}",  # per epoch, step=epoch
    TEST: "test/{}",  # once, at the best-validation state
    BEST: "best_valid/{}",  # once, at the best-validation state
    RUNNING_BEST: "best_valid_{}",  # per epoch: the best so far, what the searcher optimises
    CSV: "valid_{}",  # the column of epochs.csv
}
TRAIN_LOSS = "train/loss"  # logged with every epoch: its steps are the epochs a run has
GRAD_NORM = "grad_norm"  # the global gradient norm of an epoch
EPOCH_SCALARS: tuple[str, ...] = (TRAIN_LOSS, GRAD_NORM, "epoch_seconds", "eval_seconds")
FINAL_SCALARS: tuple[str, ...] = ("best_epoch", "epochs_run", "num_params", "seconds")
EPOCH_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "grad_norm", "epoch_seconds")


def metric_key(name: str, form: str) -> str:
    """The key of metric `name` in `form` (METRIC_FORMS), e.g. (`ndcg_5`, BEST) ->
    `best_valid/ndcg_5`; a KeyError for an unknown form is a bug."""
    return METRIC_FORMS[form].format(name)


# Validation NDCG@5 selects: early stopping, the stage-1 search, and each table's config.
SELECTION_METRIC = "ndcg_5"
SEARCH_METRIC = metric_key(SELECTION_METRIC, RUNNING_BEST)  # what Tune and Optuna maximise
SELECTION_KEY = metric_key(SELECTION_METRIC, BEST)  # a finished run's score for selection


# --- artifacts --------------------------------------------------------------------------------
CONFIG_FILE = "config.json"
EPOCHS_FILE = "epochs.csv"
ATTENTION_FILE = "attention.npz"
