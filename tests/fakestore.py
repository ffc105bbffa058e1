"""A small MLflow sqlite store with known values, shared by the analysis tests (the session
fixture `store_uri` in conftest.py). It is written by the sweep layer's own code (awr/store.py,
awr/tracking.py, the names of awr/schema.py), so it cannot drift from what sweeps write.

Experiments:
- `paper`: stage 1 (one sasrec run with a different config and a high validation score, which
  Table 2 must ignore) and stage 2: beauty x 3 seeds and ml-1m x 6 seeds for sasrec {none,
  simple} and stosa {none, stochastic}; anime x 1 seed for sasrec {none, simple}; one FAILED
  run (beauty sasrec simple seed 4, test NDCG@5 0.9); a parent run; per-epoch histories (seed 1);
  attention.npz for beauty sasrec none / simple seed 1.
- `layers`: one stage, beauty sasrec {none, simple} x layers {1, 2} x seeds {1, 2}.
- `allfailed`: a single FAILED trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from awr import schema, store, tracking
from awr.config import TrialConfig

METRIC_KS = (1, 5, 10, 20)
EPOCHS = 60
# test/ndcg_5 by (sweep stage 2) dataset -> backbone -> mechanism, one value per seed 1..n.
NDCG5 = {
    "beauty": {
        "sasrec": {"none": [0.0200, 0.0220, 0.0240], "simple": [0.0240, 0.0250, 0.0290]},
        "stosa": {"none": [0.0280, 0.0290, 0.0300], "stochastic": [0.0270, 0.0285, 0.0290]},
    },
    "ml-1m": {
        "sasrec": {
            "none": [0.060, 0.061, 0.062, 0.063, 0.064, 0.065],
            "simple": [0.062, 0.064, 0.063, 0.067, 0.0655, 0.0675],
        },
        "stosa": {
            "none": [0.047, 0.048, 0.049, 0.050, 0.051, 0.052],
            "stochastic": [0.048, 0.047, 0.050, 0.049, 0.052, 0.051],
        },
    },
    "anime": {"sasrec": {"none": [0.2000], "simple": [0.2100]}},
}
# layers sweep: num_layers -> mechanism -> values for seeds 1, 2 (beauty, sasrec).
LAYERS_NDCG5 = {
    1: {"none": [0.020, 0.022], "simple": [0.023, 0.026]},
    2: {"none": [0.024, 0.026], "simple": [0.025, 0.029]},
}
FAILED_NDCG5 = 0.9
STAGE1_NDCG5 = 0.5


def metric_values(ndcg5: float) -> dict[str, float]:
    """All test metrics of a run derived from its NDCG@5 (NDCG@N rises with N)."""
    values = {f"ndcg_{n}": ndcg5 * (0.5 + 0.1 * n) for n in range(1, 21)}
    values |= {f"recall_{k}": ndcg5 * (0.4 + 0.12 * k) for k in METRIC_KS}
    values["mrr"] = ndcg5 * 0.8
    return values


def config(dataset: str, backbone: str, mechanism: str, seed: int, **changes: object) -> dict:
    """A TrialConfig's fields as a dict: the tests' settings (L 50, dropout 0.5) and `changes`."""
    settings = TrialConfig(
        dataset=dataset, backbone=backbone, mechanism=mechanism, max_len=50, dropout=0.5,
        attn_dropout=0.5, seed=seed, eval_batch_size=1024,
    )  # fmt: skip
    return settings.replace(**changes).to_dict()


def log_run(
    client: MlflowClient, experiment_id: str, *, params: Mapping[str, Any],
    final: Mapping[str, float], sweep: str, stage: str, status: str = schema.FINISHED,
    epochs: Mapping[str, list[float]] | None = None, artifacts: tuple[Path, ...] = (),
) -> str:  # fmt: skip
    """A trial run as a sweep writes one (under its sweep's parent run, `open_sweep`): the
    trial's tags and params, `final` metrics, the
    per-epoch `epochs` (key -> values at steps 1, 2, ...), `artifacts`, and `status`."""
    seed = params["seed"]
    parent = PARENTS[experiment_id]
    tags = tracking.trial_run_tags(
        sweep, int(stage), params, "abc1234", "sha256:feed", f"t{seed}", parent
    )
    name = f"{params['dataset']}-{params['backbone']}-{params['mechanism']}-s{seed}"
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    tracking.log_params(client, run_id, params)
    tracking.log_metrics(client, run_id, final)
    history = [  # in one batch (a sweep logs one per epoch: slow for a fixture)
        Metric(key, value, 0, step)
        for key, values in (epochs or {}).items()
        for step, value in enumerate(values, start=1)
    ]
    client.log_batch(run_id, metrics=history)
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    tracking.end_run(client, run_id, status)
    return run_id


def log_trial(
    client: MlflowClient,
    experiment_id: str,
    params: dict,
    ndcg5: float,
    *,
    sweep: str,
    stage: str,
    valid_ndcg5: float | None = None,
    status: str = schema.FINISHED,
    attention: dict[str, np.ndarray] | None = None,
    tmp: Path | None = None,
) -> str:
    """A trial whose test metrics follow from its test NDCG@5 (`metric_values`); seed 1 runs
    get EPOCHS epochs of validation NDCG@5 and gradient norm."""
    final = {schema.metric_key(k, schema.TEST): v for k, v in metric_values(ndcg5).items()}
    best = ndcg5 + 0.001 if valid_ndcg5 is None else valid_ndcg5
    final |= {schema.SELECTION_KEY: best, "best_epoch": 40.0, "epochs_run": float(EPOCHS)}
    final["num_params"] = 1000.0
    epochs = {}
    if params["seed"] == 1:
        steps = range(1, EPOCHS + 1)
        valid_key = schema.metric_key(schema.SELECTION_METRIC, schema.VALID)
        epochs[valid_key] = [best * min(1.0, epoch / 40) for epoch in steps]
        epochs[schema.GRAD_NORM] = [1.0 / epoch + 0.01 * (epoch % 3) for epoch in steps]
    artifacts: tuple[Path, ...] = ()
    if attention is not None and tmp is not None:
        path = tmp / f"{sweep}-{stage}-{len(list(tmp.glob('*')))}" / schema.ATTENTION_FILE
        path.parent.mkdir(parents=True)
        np.savez(path, **attention)
        artifacts = (path,)
    return log_run(
        client, experiment_id, params=params, final=final, sweep=sweep, stage=stage,
        status=status, epochs=epochs, artifacts=artifacts,
    )  # fmt: skip


def attention_arrays(mechanism: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def weights() -> np.ndarray:
        raw = np.tril(rng.random((2, 2, 15, 15))).astype(np.float32)
        return raw / raw.sum(axis=-1, keepdims=True)

    arrays = {"layer0_A": weights()}
    if mechanism != "none":
        arrays["layer0_refined"] = weights()
    return arrays


PARENTS: dict[str, str] = {}  # experiment id -> its parent run (`open_sweep`)


def open_sweep(client: MlflowClient, uri: str, sweep: str) -> tuple[str, str]:
    """A sweep's experiment and one (ended) parent run, made as the sweep layer makes them."""
    experiment_id = store.ensure_experiment(client, sweep, uri)
    tags = tracking.parent_tags(sweep, 2, "beauty", "sasrec")
    parent = tracking.open_parent(client, experiment_id, tags, {})
    tracking.end_run(client, parent, schema.FINISHED)
    PARENTS[experiment_id] = parent
    return experiment_id, parent


def build_store(root: Path) -> str:
    """Write the store under `root`; return its absolute sqlite tracking URI."""
    uri = store.default_tracking_uri(root)
    client = store.client_for(uri)
    tmp = root / "staging"
    paper, _ = open_sweep(client, uri, "paper")
    stage1 = config("beauty", "sasrec", "none", 1, hidden_size=128)
    log_trial(client, paper, stage1, STAGE1_NDCG5, sweep="paper", stage="1", valid_ndcg5=0.9)
    for dataset, by_backbone in NDCG5.items():
        for backbone, by_mechanism in by_backbone.items():
            for mechanism, values in by_mechanism.items():
                for seed, value in enumerate(values, start=1):
                    params = config(dataset, backbone, mechanism, seed)
                    with_attention = dataset == "beauty" and backbone == "sasrec" and seed == 1
                    arrays = attention_arrays(mechanism, seed) if with_attention else None
                    log_trial(
                        client,
                        paper,
                        params,
                        value,
                        sweep="paper",
                        stage="2",
                        attention=arrays,
                        tmp=tmp,
                    )
    failed = config("beauty", "sasrec", "simple", 4)
    log_trial(client, paper, failed, FAILED_NDCG5, sweep="paper", stage="2", status=schema.FAILED)

    layers, _ = open_sweep(client, uri, "layers")
    for num_layers, by_mechanism in LAYERS_NDCG5.items():
        for mechanism, values in by_mechanism.items():
            for seed, value in enumerate(values, start=1):
                params = config("beauty", "sasrec", mechanism, seed, num_layers=num_layers)
                log_trial(client, layers, params, value, sweep="layers", stage="1")

    broken, _ = open_sweep(client, uri, "allfailed")
    failed_only = config("beauty", "sasrec", "none", 1)
    log_trial(client, broken, failed_only, 0.1, sweep="allfailed", stage="1", status=schema.FAILED)
    return uri
