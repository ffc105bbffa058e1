"""Time left, estimated, and durations as text: pure functions shared by a trial's epoch lines
(awr/train/trainer.py) and a sweep's progress lines (awr/sweep/progress.py).

Every estimate here is linear in epochs: `pace` seconds per epoch (measured so far) times the
epochs still to run. What differs is how many epochs are still to run:
- one trial (`fit_epochs_left`): early stopping ends it once `patience` epochs pass without a
  better validation NDCG@5, so the fewest epochs left are those up to `best_epoch + patience`
  and the most are those up to `max_epochs`;
- a trial of a sweep (`trial_epochs_left`): as many as the finished trials ran on average
  (`expected`), at least one more, at most the budget;
- trials that run side by side (`time_left`): their epochs shared over the slots, but never
  less than the longest single trial still needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def format_duration(seconds: float) -> str:
    """Seconds as a short text: `42s`, `12m05s`, `3h07m`, `2d04h` (rounded to the second, then
    cut to the two largest units); `n/a` for a non-finite value."""
    if not math.isfinite(seconds):
        return "n/a"
    total = max(round(seconds), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def fit_epochs_left(epoch: int, best_epoch: int, patience: int, max_epochs: int) -> tuple[int, int]:
    """(fewest, most) epochs a trial still trains after `epoch` (1-based, done): early stopping
    ends it after epoch `best_epoch + patience` unless validation improves, the budget after
    `max_epochs`. Both are 0 once it stops (the trainer's loop condition)."""
    if epoch >= max_epochs or epoch - best_epoch >= patience:
        return 0, 0
    fewest = min(best_epoch + patience, max_epochs) - epoch
    return fewest, max_epochs - epoch


def trial_epochs_left(epoch: int, expected: float, budget: int) -> float:
    """Epochs a sweep trial at `epoch` (done) is expected to run still: up to `expected` (what
    finished trials ran on average), at least one more, never past the `budget`."""
    if epoch >= budget:
        return 0.0
    return min(float(budget), max(expected, epoch + 1.0)) - epoch


def time_left(pace: float, epochs_left: Sequence[float], slots: int = 1) -> float:
    """Seconds until trials with `epochs_left` (one entry per trial, running or pending) are
    done at `pace` seconds per epoch of one trial, with up to `slots` trials side by side:

        pace * max(sum(epochs_left) / slots, max(epochs_left))

    (the work shared over the slots, but not less than the longest trial alone). 0 for no
    trials."""
    if not epochs_left:
        return 0.0
    return pace * max(sum(epochs_left) / max(slots, 1), max(epochs_left))
