"""Process environment for sweeps, set before Ray or MLflow are imported or started."""

from __future__ import annotations

import logging
import os
from pathlib import Path

DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # Checkpoints are kept one per trial, so Tune snapshots the experiment after each one (which
    # keeps --resume exact); its warning about frequent snapshots is expected, not a problem.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0 the old reporter prints nothing at all
}
QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "mlflow", "alembic")


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
