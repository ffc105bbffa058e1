"""The base of every error awr raises on purpose.

An `AwrError` is a fault the user can fix (a bad option, a missing file, a store that is not
there); its message says what is wrong and what to do. The command line (awr/cli/) prints it
as one line `error: <message>` and exits 2. Any other exception is a bug and keeps its
traceback. The subclasses live beside the code that raises them: `ConfigError`
(awr/config.py), `DataError` (awr/data/errors.py), `StoreError` (awr/store.py), `SweepError`
and `StorageError` (awr/sweep/), `CommandError` (awr/cli/store.py), `AnalysisError`
(analysis/runs.py), `TrainingDiverged` (awr/train/trainer.py: the trial fails alone; `--trial`
says which learning rate to lower), `PlanError` (awr/bench/gpu_plan.py).
"""

from __future__ import annotations


class AwrError(Exception):
    """A fault the user can fix; the message names the file, option or value and the fix."""
