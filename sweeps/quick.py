"""quick: the default sweep, a small end-to-end run of both stages on ML-1M.

2026-11-23. Run (about 5 minutes on a 2-core CPU, 4.7 measured from a fresh clone):
    python orchestrate.py --sweep quick --out runs/quick

Stage 1 tries a tiny grid (lr x dropout, 4 trials per backbone) at hidden size 32 and max length
50 for a few epochs; stage 2 runs every mechanism that fits the backbone once at the best of
those settings. It shows the machinery, not the paper's numbers (see `paper` and `fixed`).
"""

from __future__ import annotations

from typing import Any

from awr.config import TrialConfig
from awr.sweep import Budget, Resources, Search, Sweep, cells_for

DATASETS = ("ml-1m",)
SMALL = dict(hidden_size=32, max_len=50, num_layers=1, num_heads=2, batch_size=256)
SETTINGS = {
    "sasrec": TrialConfig(backbone="sasrec", dropout=0.2, attn_dropout=0.2, **SMALL),
    "stosa": TrialConfig(
        backbone="stosa", dropout=0.3, attn_dropout=0.0, pvn_weight=0.005, **SMALL
    ),
}
BUDGET = Budget(max_epochs=8, patience=3)
SEEDS = (1,)
RESOURCES = Resources(cpus=1, gpus=0.25)


def space(trial: Any, backbone: str) -> None:
    """Stage 1's define-by-run grid: the same two fields for both backbones."""
    trial.suggest_categorical("lr", [1e-3, 3e-3])
    trial.suggest_categorical("dropout", [0.2, 0.5])


def sweep() -> Sweep:
    return Sweep(
        name="quick",
        description="ML-1M, SASRec and STOSA: 4-point grid, then every mechanism x 1 seed",
        cells=cells_for(DATASETS, SETTINGS),
        budget=BUDGET,
        seeds=SEEDS,
        search=Search(space, sampler="grid"),
        resources=RESOURCES,
    )
