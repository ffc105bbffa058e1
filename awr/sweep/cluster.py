"""Ray for a sweep: the process environment and library logging set before Ray or MLflow start,
a local instance started (or a cluster attached) and always shut down, and trials sized from
what the cluster has, refusing GPU requests it cannot meet."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from awr.sweep.folder import storage_fault
from awr.sweep.processes import clear_session, record_session
from awr.sweep.spec import Resources, SweepError

OBJECT_STORE_BYTES = 512 * 2**20  # trials pass little through the object store
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


@dataclass(frozen=True)
class Cluster:
    cpus: float
    gpus: float


@dataclass(frozen=True)
class Placement:
    """What each trial asks Ray for, the device it trains on, and how many run at once."""

    cpus: int
    gpus: float
    device: str
    concurrent: int

    def as_ray(self) -> dict[str, float]:
        return {"cpu": self.cpus, "gpu": self.gpus}

    def describe(self) -> str:
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.cpus} CPU{gpu} per trial on {self.device}, up to {self.concurrent} at once"


def local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def ray_session(out: Path, address: str | None) -> Iterator[Cluster]:
    """A Ray to run on: the one already initialised in this process (tests), a cluster at
    `address`, or a local instance that is shut down on exit, whatever happens, with every
    process of its session stopped. Call it holding the folder's lock (folder.claim_folder)."""
    import ray

    if ray.is_initialized():
        yield _cluster(ray.cluster_resources())
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        try:
            yield _cluster(ray.cluster_resources())
        finally:
            ray.shutdown()
        return
    record_session(out, None)  # a driver killed while Ray starts is found by its pid
    try:
        ray.init(
            num_cpus=local_cpus(),
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=OBJECT_STORE_BYTES,
            logging_level=logging.WARNING,
        )
        record_session(out, session_dir())
        yield _cluster(ray.cluster_resources())
    finally:
        ray.shutdown()
        with suppress(OSError):  # a folder gone read-only must not hide the error itself
            clear_session(out)


def session_dir() -> str:
    """The session folder of the local Ray this process started (see processes.py)."""
    import ray

    return ray._private.worker.global_worker.node.get_session_dir_path()


def _cluster(resources: dict[str, float]) -> Cluster:
    return Cluster(cpus=resources.get("CPU", 0.0), gpus=resources.get("GPU", 0.0))


def trial_resources(
    wanted: Resources, gpus_option: float | None, cluster: Cluster, where: str = "the Ray cluster"
) -> Placement:
    """Per-trial resources: GPUs (the option, else the sweep's fraction) where the cluster has
    them, else CPU only. Asking for GPUs the cluster lacks is an error now, not a trial that
    stays PENDING forever (`where` names the cluster in the message)."""
    if gpus_option is not None and (
        gpus_option < 0 or (gpus_option > 1 and gpus_option != int(gpus_option))
    ):
        raise SweepError(
            f"--gpus-per-trial must be 0, a fraction up to 1 or a whole number; got {gpus_option}"
        )
    have = f"{where} has {cluster.cpus:g} CPUs and {cluster.gpus:g} GPUs"
    gpus = wanted.gpus if gpus_option is None else gpus_option
    if cluster.gpus == 0:
        if gpus_option:
            raise SweepError(
                f"--gpus-per-trial {gpus_option:g} asks for GPUs, but {have}; "
                "use --gpus-per-trial 0 (CPU) or attach to a cluster with GPUs (--address)"
            )
        gpus = 0.0
    elif gpus > cluster.gpus:
        raise SweepError(f"{gpus:g} GPUs per trial, but {have}")
    if wanted.cpus > cluster.cpus:
        raise SweepError(f"{wanted.cpus} CPUs per trial, but {have}")
    concurrent = int(cluster.cpus // wanted.cpus)
    if gpus:
        concurrent = min(concurrent, int(math.floor(cluster.gpus / gpus + 1e-9)))
    device = "cuda" if gpus else "cpu"
    return Placement(cpus=wanted.cpus, gpus=gpus, device=device, concurrent=max(concurrent, 1))


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
