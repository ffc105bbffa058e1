"""layers: Table 3, Beauty at the tuned settings with 1 to 4 layers, the original and every
mechanism (stage 2 only).

2026-11-23. Run:
    python orchestrate.py --sweep layers --out runs/layers

TUNED holds the settings each backbone runs at, apart from num_layers. They start as the
fixed settings for Beauty; replace them with the paper sweep's stage-1 best for Beauty
(`best_config` in runs/paper/paper.sweep.json, or the params of its stage-2 parent runs).
"""

from __future__ import annotations

from awr.sweep import Axis, Budget, Cell, Resources, Sweep
from sweeps.fixed import fixed_settings

DATASET = "beauty"
TUNED = {
    "sasrec": fixed_settings(DATASET, "sasrec"),
    "stosa": fixed_settings(DATASET, "stosa").replace(stosa_released_code=True),
}
LAYERS = Axis("num_layers", (1, 2, 3, 4))
BUDGET = Budget(max_epochs=400, patience=20)
SEEDS = (1, 2, 3)
RESOURCES = Resources(cpus=1, gpus=0.25)


def sweep() -> Sweep:
    return Sweep(
        name="layers",
        description="Beauty, SASRec and STOSA at fixed tuned settings: num_layers 1-4 x every "
        "mechanism x 3 seeds",
        cells=tuple(Cell(config) for config in TUNED.values()),
        budget=BUDGET,
        seeds=SEEDS,
        axes=(LAYERS,),
        resources=RESOURCES,
    )
