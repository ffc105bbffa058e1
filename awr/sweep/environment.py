"""Process environment for sweeps, set before Ray or MLflow are imported or started."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from awr.sweep.folder import storage_fault

DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Checkpoints are kept one per trial, so Tune snapshots the experiment after each one (which
    # keeps --resume exact); its warning about frequent snapshots is expected, not a problem.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0 the old reporter prints nothing at all
}
QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "mlflow", "alembic")
# Tune logs each failed trial and each failed state snapshot with a traceback; the sweep keeps
# one line of each (the full error is in the trial's MLflow run, tag `error`, and its error.txt).
ONE_LINE_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.execution.experiment_state")
LIBRARY_NOTES = ("(Background on this error", "[SQL:", "[parameters:")  # SQLAlchemy's trailers
# MLflow logs each store error with its traceback, then raises it: the raised error is enough.
SILENT_LOGGERS = ("mlflow.store.db.utils",)


def prepare_environment(local: bool) -> None:
    """Quiet, telemetry-free defaults (an operator's own settings win). A local Ray runs without
    token authentication. Trials change directory, so a relative cache folder is made absolute."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    if local:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cache = os.environ.get("AWR_CACHE_DIR")
    if cache and not Path(cache).expanduser().is_absolute():
        os.environ["AWR_CACHE_DIR"] = str(Path(cache).resolve())


def quiet_libraries() -> None:
    """Warnings and errors only from Ray, MLflow and Optuna: the sweep prints its own lines."""
    import mlflow  # noqa: F401  (configures its loggers on import: set them after)
    import optuna

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Restored trials that never wrote a result file are expected after a kill.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in ONE_LINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OneLineErrors) for f in logger.filters):
            logger.addFilter(OneLineErrors())


class OneLineErrors(logging.Filter):
    """Replace a record's traceback by one line appended to its message: the storage fault it
    is (`(the disk is full (/out/ray/...))`, see folder.storage_fault), else the last line of
    its exception (`TrainingDiverged: training loss is nan at epoch 2`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            lines = [line for line in lines if not line.startswith(LIBRARY_NOTES)]
            last = lines[-1] if lines else ""
            summary = last if ":" in last else f"{type(error).__name__}: {last}".rstrip(": ")
            fault = storage_fault(error)
            summary = f"({fault})" if fault else summary
            record.msg = f"{record.getMessage()} {summary}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
