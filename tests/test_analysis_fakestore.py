"""A small MLflow sqlite store in the sweep layer's schema, with known values, shared by the
analysis tests (imported as `test_analysis_fakestore`), plus a check that it is as described.

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

import os
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")

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
    base = {
        "dataset": dataset,
        "backbone": backbone,
        "mechanism": mechanism,
        "loss": "bce",
        "hidden_size": 64,
        "max_len": 50,
        "num_layers": 1,
        "num_heads": 2,
        "dropout": 0.5,
        "attn_dropout": 0.5,
        "lr": 0.001,
        "weight_decay": 0.0,
        "batch_size": 256,
        "max_epochs": 400,
        "patience": 20,
        "seed": seed,
        "device": "cpu",
        "pvn_weight": 0.005,
        "stosa_released_code": False,
        "refine_per_head": False,
        "additive_mix": "fixed",
        "eval_batch_size": 1024,
        "precision": "fp32",
        "compile": False,
        "length_groups": 0,
    }
    return base | changes


def log_trial(
    client: MlflowClient,
    experiment_id: str,
    params: dict,
    ndcg5: float,
    *,
    sweep: str,
    stage: str,
    valid_ndcg5: float | None = None,
    status: str = "FINISHED",
    attention: dict[str, np.ndarray] | None = None,
    tmp: Path | None = None,
) -> str:
    tags = {
        "awr.kind": "trial",
        "sweep": sweep,
        "stage": stage,
        "dataset": params["dataset"],
        "backbone": params["backbone"],
        "mechanism": params["mechanism"],
        "seed": str(params["seed"]),
        "git_commit": "abc1234",
        "data_checksum": "sha256:feed",
        "ray_trial_id": f"t{params['seed']}",
    }
    name = f"{params['dataset']}-{params['backbone']}-{params['mechanism']}-s{params['seed']}"
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    metrics = [Metric(f"test/{k}", v, 0, 0) for k, v in metric_values(ndcg5).items()]
    best = ndcg5 + 0.001 if valid_ndcg5 is None else valid_ndcg5
    metrics += [Metric("best_valid/ndcg_5", best, 0, 0), Metric("best_epoch", 40.0, 0, 0)]
    metrics += [Metric("epochs_run", float(EPOCHS), 0, 0), Metric("num_params", 1000.0, 0, 0)]
    for epoch in range(1, EPOCHS + 1) if params["seed"] == 1 else ():
        metrics.append(Metric("valid/ndcg_5", best * min(1.0, epoch / 40), 0, epoch))
        metrics.append(Metric("grad_norm", 1.0 / epoch + 0.01 * (epoch % 3), 0, epoch))
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
    if attention is not None and tmp is not None:
        path = tmp / run_id / "attention.npz"
        path.parent.mkdir(parents=True)
        np.savez(path, **attention)
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status)
    return run_id


def attention_arrays(mechanism: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def weights() -> np.ndarray:
        raw = np.tril(rng.random((2, 2, 15, 15))).astype(np.float32)
        return raw / raw.sum(axis=-1, keepdims=True)

    arrays = {"layer0_A": weights()}
    if mechanism != "none":
        arrays["layer0_refined"] = weights()
    return arrays


def build_store(root: Path) -> str:
    """Write the store under `root`; return its absolute sqlite tracking URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root.mkdir(parents=True, exist_ok=True)
    uri = "sqlite:///" + str((root / "mlflow.db").resolve())
    client = MlflowClient(tracking_uri=uri)
    artifacts = (root / "artifacts").resolve()
    tmp = root / "staging"
    paper = client.create_experiment("paper", artifact_location=artifacts.as_uri())
    parent_tags = {"awr.kind": "parent", "sweep": "paper", "stage": "2"}
    parent = client.create_run(paper, run_name="stage2", tags=parent_tags).info.run_id
    client.set_terminated(parent, "FINISHED")
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
    log_trial(client, paper, failed, FAILED_NDCG5, sweep="paper", stage="2", status="FAILED")

    layers = client.create_experiment("layers", artifact_location=(artifacts / "l").as_uri())
    for num_layers, by_mechanism in LAYERS_NDCG5.items():
        for mechanism, values in by_mechanism.items():
            for seed, value in enumerate(values, start=1):
                params = config("beauty", "sasrec", mechanism, seed, num_layers=num_layers)
                log_trial(client, layers, params, value, sweep="layers", stage="1")

    broken = client.create_experiment("allfailed", artifact_location=(artifacts / "f").as_uri())
    failed_only = config("beauty", "sasrec", "none", 1)
    log_trial(client, broken, failed_only, 0.1, sweep="allfailed", stage="1", status="FAILED")
    return uri


_STORES: dict[str, str] = {}


def shared_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store, built once per test session and shared by the analysis test modules."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _STORES:
        _STORES[key] = build_store(tmp_path_factory.mktemp("mlflow_store"))
    return _STORES[key]


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return shared_store(tmp_path_factory)


def test_store_holds_the_described_runs(store_uri: str) -> None:
    client = MlflowClient(tracking_uri=store_uri)
    paper = client.get_experiment_by_name("paper")
    runs = client.search_runs([paper.experiment_id], max_results=1000)
    kinds = [run.data.tags["awr.kind"] for run in runs]
    stage2 = sum(len(v) for b in NDCG5.values() for m in b.values() for v in m.values())
    assert kinds.count("parent") == 1
    assert kinds.count("trial") == stage2 + 2  # + stage 1 run + failed run
    statuses = [run.info.status for run in runs if run.data.tags["awr.kind"] == "trial"]
    assert statuses.count("FAILED") == 1
