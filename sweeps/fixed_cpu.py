"""fixed_cpu: what a 2-core CPU can run of `fixed` in about an hour: ML-1M only, max_len 50,
one seed, every backbone x mechanism (STOSA with stosa_released_code False and True), a capped
epoch budget. Everything else as `fixed` (docs/sweeps.md's settings for ML-1M, 1 layer).

2026-11-23. Run:
    python orchestrate.py --sweep fixed_cpu --out runs/fixed_cpu
"""

from __future__ import annotations

from awr.sweep import Budget, Sweep
from sweeps.fixed import RESOURCES, SETTINGS, fixed_cell

MAX_LEN = 50
# The runs in results/2026-11-23-fixed_cpu were made before length groups existed: one group
# reproduces their dropout draws (more groups give the same gradients but other draws).
LENGTH_GROUPS = 1
BUDGET = Budget(max_epochs=60, patience=20)
SEEDS = (1,)


def sweep() -> Sweep:
    cells = tuple(
        fixed_cell(config.replace(max_len=MAX_LEN, length_groups=LENGTH_GROUPS))
        for config in SETTINGS
        if config.dataset == "ml-1m"
    )
    return Sweep(
        name="fixed_cpu",
        description="ML-1M at the fixed settings but max_len 50, 1 seed, at most 60 epochs "
        "(patience 20): every mechanism, STOSA x stosa_released_code; a CPU-sized `fixed`",
        cells=cells,
        budget=BUDGET,
        seeds=SEEDS,
        resources=RESOURCES,
    )
