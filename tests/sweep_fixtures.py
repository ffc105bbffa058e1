"""Small sweeps on the synthetic dataset for the sweep tests, loadable by dotted path
(`python orchestrate.py --sweep tests.sweep_fixtures:resumable`); tests/test_sweep_plan.py
checks that they plan as intended."""

from __future__ import annotations

import dataclasses
from typing import Any

from awr.config import TrialConfig
from awr.sweep import Budget, Cell, Search, Sweep

TINY = TrialConfig(
    dataset="synthetic", hidden_size=16, max_len=10, num_heads=1, batch_size=64, eval_batch_size=256
)
LEARNING_RATES = [1e-3, 1e-2, 1e6]  # 1e6 makes the loss NaN: that trial must fail alone
STAGE2_MECHANISMS = {"sasrec": ("none", "simple")}


def lr_space(trial: Any, backbone: str) -> None:
    trial.suggest_categorical("lr", LEARNING_RATES)


def tiny() -> Sweep:
    """Two stages on one cell: 3 stage-1 trials (one diverges), 2 mechanisms x 1 seed."""
    return Sweep(
        name="tiny",
        description="synthetic SASRec: lr grid with a diverging point, then 2 mechanisms",
        cells=(Cell(TINY),),
        budget=Budget(max_epochs=3, patience=2),
        seeds=(1,),
        search=Search(lr_space),
        mechanisms=STAGE2_MECHANISMS,
        capture_users=4,
    )


def steady_space(trial: Any, backbone: str) -> None:
    trial.suggest_categorical("lr", [1e-3, 1e-2])


def packed() -> Sweep:
    """Stage 2 only, 2 mechanisms x 2 seeds packed (2 Ray trials), no dropout: each member
    must log what its lone trial would; checkpoints after every epoch."""
    return Sweep(
        name="packed",
        description="synthetic SASRec: 2 mechanisms x 2 packed seeds",
        cells=(Cell(TINY.replace(dropout=0.0, attn_dropout=0.0)),),
        budget=Budget(max_epochs=3, patience=2),
        seeds=(1, 2),
        mechanisms=STAGE2_MECHANISMS,
        capture_users=4,
        checkpoint_seconds=0.0,
        pack_seeds=True,
    )


def packed_resumable() -> Sweep:
    """Two packs of 2 seeds, 30 epochs each, checkpointed every second: killed mid-pack."""
    return dataclasses.replace(
        packed(),
        name="packed_resumable",
        description="synthetic SASRec: 2 mechanisms x 2 packed seeds, 30 epochs",
        cells=(Cell(TINY.replace(batch_size=16)),),
        budget=Budget(max_epochs=30, patience=30),
        checkpoint_seconds=1.0,
    )


def resumable() -> Sweep:
    """Long enough per trial (about 8 s in Ray, most of it the actor's start-up) to be killed
    mid-sweep: 2 + 4 trials (unpacked on CPU; tests/test_sweep_packed.py kills packs)."""
    return Sweep(
        name="resumable",
        description="synthetic SASRec: 2-point grid, then 2 mechanisms x 2 seeds",
        cells=(Cell(TINY.replace(batch_size=16)),),
        budget=Budget(max_epochs=12, patience=12),
        seeds=(1, 2),
        search=Search(steady_space),
        mechanisms=STAGE2_MECHANISMS,
        capture_users=4,
    )
