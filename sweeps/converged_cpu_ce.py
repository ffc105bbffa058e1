"""converged_cpu_ce: the loss question beside `converged_cpu`. SASRec original and M1 (simple)
with `loss=ce` (softmax over all items instead of one sampled negative), otherwise exactly
`converged_cpu`'s SASRec cell: ML-1M, max_len 50, seeds 1-3, up to 400 epochs, patience 20.
Does a gain found under BCE survive the loss that makes SASRec much stronger?

2026-12-01. Run:
    python orchestrate.py --sweep converged_cpu_ce --out runs/converged_cpu_ce
"""

from __future__ import annotations

from awr.sweep import Cell, Sweep
from sweeps import converged_cpu


def sweep() -> Sweep:
    base = converged_cpu.sweep()
    sasrec = next(cell for cell in base.cells if cell.backbone == "sasrec")
    return Sweep(
        name="converged_cpu_ce",
        description="converged_cpu's SASRec cell with loss=ce: original and M1 x 3 seeds",
        cells=(Cell(sasrec.settings.replace(loss="ce")),),
        budget=base.budget,
        seeds=base.seeds,
        mechanisms={"sasrec": ("none", "simple")},
        resources=base.resources,
    )
