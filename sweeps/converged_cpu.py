"""converged_cpu: `fixed_cpu` trained to convergence. ML-1M at the fixed settings for ML-1M
(1 layer) but max_len 50, seeds 1-3, up to 400 epochs with patience 20 (the paper's and the
reference codes' budget), every backbone x mechanism, STOSA with stosa_released_code False and
True. Length groups on auto. What a 2-core CPU can train to the end in a day.

2026-12-01. Run:
    python orchestrate.py --sweep converged_cpu --out runs/converged_cpu
"""

from __future__ import annotations

from awr.sweep import Budget, Sweep
from sweeps.fixed import BUDGET, RESOURCES, SEEDS, SETTINGS, fixed_cell

MAX_LEN = 50


def sweep() -> Sweep:
    cells = tuple(
        fixed_cell(config.replace(max_len=MAX_LEN))
        for config in SETTINGS
        if config.dataset == "ml-1m"
    )
    return Sweep(
        name="converged_cpu",
        description="ML-1M at the fixed settings but max_len 50, 3 seeds, up to 400 epochs "
        "(patience 20): every mechanism, STOSA x stosa_released_code; fixed_cpu to convergence",
        cells=cells,
        budget=Budget(max_epochs=BUDGET.max_epochs, patience=BUDGET.patience),
        seeds=SEEDS,
        resources=RESOURCES,
    )
