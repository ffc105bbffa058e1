"""fixed_ml1m: the `fixed` sweep's ML-1M cells alone (SASRec, and STOSA x stosa_released_code,
every mechanism x 3 seeds), as `fixed` defines them. The prepared GPU run
(`python -m awr.bench gpu`) runs it for as long as its time budget allows; `--resume`
continues it.

2026-12-02. Run:
    python orchestrate.py --sweep fixed_ml1m --out runs/fixed_ml1m
"""

from __future__ import annotations

import dataclasses

from awr.sweep import Sweep
from sweeps import fixed


def sweep() -> Sweep:
    whole = fixed.sweep()
    return dataclasses.replace(
        whole,
        name="fixed_ml1m",
        description="the fixed sweep's ML-1M cells: every mechanism x 3 seeds "
        "(STOSA x stosa_released_code False/True), no search",
        cells=tuple(cell for cell in whole.cells if cell.dataset == "ml-1m"),
    )
