"""fixed: a cheap reproduction without search, the fixed settings (docs/sweeps.md) (the reference
codes' READMEs, 1 layer), the original and every mechanism x seeds; STOSA both as its paper
describes it and as the released code runs it.

2026-11-23. Run:
    python orchestrate.py --sweep fixed --out runs/fixed
"""

from __future__ import annotations

from awr.config import TrialConfig
from awr.sweep import Axis, Budget, Cell, Resources, Sweep

COMMON = dict(hidden_size=64, num_layers=1, lr=1e-3, weight_decay=0.0, batch_size=256)
STOSA = dict(attn_dropout=0.0, pvn_weight=0.005)
# The fixed settings (docs/sweeps.md), by dataset and backbone, over COMMON.
FIXED = {
    ("ml-1m", "sasrec"): dict(max_len=200, num_heads=2, dropout=0.2, attn_dropout=0.2),
    ("ml-1m", "stosa"): dict(max_len=200, num_heads=2, dropout=0.3, **STOSA),
    ("beauty", "sasrec"): dict(max_len=50, num_heads=2, dropout=0.5, attn_dropout=0.5),
    ("beauty", "stosa"): dict(max_len=100, num_heads=4, dropout=0.3, **STOSA),
}


def fixed_settings(dataset: str, backbone: str) -> TrialConfig:
    """The fixed settings of `backbone` on `dataset` (one of FIXED's keys)."""
    return TrialConfig(dataset=dataset, backbone=backbone, **COMMON, **FIXED[dataset, backbone])


SETTINGS = tuple(fixed_settings(dataset, backbone) for dataset, backbone in FIXED)
RELEASED_CODE = Axis("stosa_released_code", (False, True))
BUDGET = Budget(max_epochs=400, patience=20)
SEEDS = (1, 2, 3)
RESOURCES = Resources(cpus=1, gpus=0.25)


def fixed_cell(config: TrialConfig) -> Cell:
    """A cell at `config`; STOSA cells also vary stosa_released_code."""
    return Cell(config, axes=(RELEASED_CODE,) if config.backbone == "stosa" else ())


def sweep() -> Sweep:
    return Sweep(
        name="fixed",
        description="ML-1M and Beauty at the fixed settings: every mechanism x 3 seeds "
        "(STOSA x stosa_released_code False/True), no search",
        cells=tuple(fixed_cell(config) for config in SETTINGS),
        budget=BUDGET,
        seeds=SEEDS,
        resources=RESOURCES,
    )
