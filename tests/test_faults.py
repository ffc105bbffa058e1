"""Fault injection (issue 17): each fault reproduced on a tiny sweep, or before one starts, and
its outcome counted. Concurrent drivers: one runs, the other gets one line at once. SIGKILL:
nothing of the driver's Ray is left, counted from the process table. Unwritable, read-only and
full folders: one line, no traceback, no MLflow run left RUNNING. Bad input (no sweep to resume,
a corrupt state file, item ids far beyond a file's size, a diverging --trial): one line. A
resumed trial logs no epoch twice.

The real-driver tests are slow; the tmpfs ones need root and `mount` (skipped otherwise)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sweep_fixtures import tiny
from test_sweep_resume import (
    SWEEP,
    launch,
    parent_runs,
    ray_processes,
    trial_runs,
    wait_for_finished,
)

import orchestrate
from awr import store, tracking
from awr.data.datasets import ITEM_ID_FLOOR, item_id_bound, load_dataset, read_cache, write_cache
from awr.data.errors import DataError
from awr.sweep import SweepError, SweepOptions, run_sweep
from awr.sweep.cluster import OneLineErrors
from awr.sweep.folder import (
    MIN_FREE_BYTES,
    RESERVE_BYTES,
    StorageError,
    claim_folder,
    storage_fault,
    take_lock,
)
from awr.sweep.processes import SESSION_FILE, reap_leftovers, session_processes, start_ticks
from awr.sweep.state import SweepState, UnitRecord
from awr.train.trainer import EpochRecord

pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")

TINY = "sweep_fixtures:tiny"
MiB = 2**20


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    """orchestrate.main in this process: (exit code, stderr lines, stdout)."""
    code = orchestrate.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


# --- one driver per folder -------------------------------------------------------------------


def test_a_second_driver_is_refused_at_once_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with claim_folder(out):
        before = sorted(os.listdir(out))
        started = time.monotonic()
        code, err, stdout = cli(capsys, "--sweep", TINY, "--out", str(out))
        assert time.monotonic() - started < 30
        assert sorted(os.listdir(out)) == before == [".lock", ".reserve"]
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: another sweep driver (pid {os.getpid()}) is running in {out}; wait for it to "
        "end, or use another --out"
    )
    assert "sweep tiny:" not in stdout  # Ray never started
    assert sorted(os.listdir(out)) == [".lock"]  # the reserve goes with the driver


HOLDER = """
import subprocess, sys, time
from pathlib import Path
from awr.sweep.folder import take_lock
take_lock(Path(sys.argv[1]))
child = subprocess.Popen(["sleep", "60"], close_fds=False)  # like Ray's helpers, it outlives us
print(child.pid, flush=True)
time.sleep(60)
"""


def test_the_lock_goes_with_a_killed_driver_not_with_its_children(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(SweepError, match=f"pid {holder.pid}"):
            take_lock(tmp_path)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert start_ticks(child) is not None  # still alive, and holds no lock
        os.close(take_lock(tmp_path))
    finally:
        holder.kill()
        os.kill(child, signal.SIGKILL)


# --- folders that cannot take a sweep --------------------------------------------------------


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A folder to mount a tmpfs on (needs root and mount); unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount")
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


def mount_tmpfs(point: Path, options: str) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("file", "error: cannot create --out {out}: [Errno 20] Not a directory"),
        ("proc", "error: cannot create --out {out}: [Errno 2] No such file or directory"),
        ("sys", "error: cannot create --out {out}: [Errno 1] Operation not permitted"),
        ("read-only", "error: cannot write to --out {out}: [Errno 30] Read-only file system"),
        ("full", "error: only 1 MiB free on --out {out}; a sweep needs at least 208 MiB"),
    ],
)
def test_an_unusable_out_is_one_line_before_ray_starts(
    where: str, expected: str, tmp_path: Path, request: pytest.FixtureRequest, capsys
) -> None:
    if where == "file":
        (tmp_path / "plain").write_text("a file, not a folder")
        out = tmp_path / "plain" / "out"
    elif where in ("proc", "sys"):
        out = Path(f"/{where}/awr-sweep/out")
    else:
        point = request.getfixturevalue("mount_point")
        mount_tmpfs(point, "size=1m" + (",ro" if where == "read-only" else ""))
        out = point if where == "read-only" else point / "out"
    code, err, stdout = cli(capsys, "--sweep", TINY, "--out", str(out))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(expected.format(out=out)), err
    assert "Traceback" not in stdout and "sweep tiny:" not in stdout


def test_an_unwritable_data_cache_is_one_warning(tmp_path: Path) -> None:
    from awr.sweep.folder import check_cache

    (tmp_path / "plain").write_text("")
    warning = check_cache(tmp_path / "plain" / "cache")
    assert warning is not None and warning.startswith("warning: ") and "AWR_CACHE_DIR" in warning
    assert check_cache(tmp_path / "cache") is None


# --- resume and the state file ---------------------------------------------------------------


def test_resume_where_no_sweep_began_says_so_and_how_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "typo"
    out.mkdir()
    SweepState.open(out, "other", (1,))
    code, err, _ = cli(capsys, "--sweep", TINY, "--out", str(out), "--resume")
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: --resume: {out} holds no sweep 'tiny' (no tiny.sweep.json); it holds sweep "
        f"'other'; check --out and --sweep, or start the sweep without --resume: "
        f"python orchestrate.py --sweep {TINY} --out {out}"
    )
    typo = tmp_path / "no-such-folder"
    code, err, _ = cli(capsys, "--sweep", TINY, "--out", str(typo), "--resume")
    assert code == 2 and err[0].startswith(f"error: --resume: {typo} holds no sweep 'tiny'")
    assert not typo.exists()  # nothing created for a mistyped --out


def record(value: float) -> UnitRecord:
    return UnitRecord(trials=3, finished=2, failed=1, parent_run_id="p", best_value=value)


def test_a_corrupt_state_names_the_file_and_its_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    state = SweepState.open(out, "tiny", (1,))
    state.units["1/synthetic/sasrec"] = record(0.25)
    state.save()
    good = state.path.read_text()
    state.units["2/synthetic/sasrec/seeds=1"] = record(0.5)
    state.save()
    assert SweepState.backup(state.path).read_text() == good  # the state before the last save
    state.path.write_text(state.path.read_text()[:100])  # truncated
    code, err, _ = cli(capsys, "--sweep", TINY, "--out", str(out), "--resume")
    assert code == 2 and len(err) == 1, err
    bak = f"{state.path}.bak"
    assert err[0].startswith(f"error: the sweep state {state.path} is corrupt (")
    assert f"restore the last good state with `cp {bak} {state.path}` and resume again" in err[0]
    shutil.copyfile(bak, state.path)  # what the line says to do
    assert SweepState.load(out, "tiny", (1,)).units == {"1/synthetic/sasrec": record(0.25)}
    state.path.write_text('{"sweep": "tiny", "units": {"1/a/b": {"trials": 1}}}')
    SweepState.backup(state.path).unlink()
    with pytest.raises(SweepError, match="corrupt .*there is no backup"):
        SweepState.load(out, "tiny", (1,))


# --- bad input -------------------------------------------------------------------------------


def test_item_ids_far_beyond_the_file_are_a_data_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert item_id_bound(10) == ITEM_ID_FLOOR == 2**20
    assert item_id_bound(10**6) == 8 * 10**6
    path = tmp_path / "ids.txt"
    path.write_text(f"1 1\n1 2\n1 {2**20}\n2 2\n")
    assert load_dataset(str(path), cache_dir=str(tmp_path / "c")).num_items == 2**20  # the bound
    path.write_text(f"1 1\n1 2\n2 3\n2 {10**12}\n")
    with pytest.raises(DataError) as caught:
        load_dataset(str(path), cache_dir=str(tmp_path / "c"))
    assert str(caught.value).startswith(
        f"{path}, line 4: item id 1000000000000 is beyond 1,048,576, the largest id a file of 4 "
        "interactions may use"
    )
    assert str(caught.value).endswith("re-index the items to 1..N")
    code, err, _ = cli(capsys, "--trial", f"dataset={path}", "max_epochs=1")
    assert code == 2 and err == [f"error: {caught.value}"]


def test_a_cache_with_ids_beyond_the_bound_is_not_trusted(tmp_path: Path) -> None:
    """A cache written before the bound existed is parsed again (and then refused)."""
    write_cache(tmp_path / "ok.npz", np.array([1, 2**20]), np.array([0, 2]))
    write_cache(tmp_path / "bad.npz", np.array([1, 2**20 + 1]), np.array([0, 2]))
    assert read_cache(tmp_path / "ok.npz") is not None
    assert read_cache(tmp_path / "bad.npz") is None


def test_a_diverging_trial_is_an_error_line_with_its_epoch_and_lr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = ["dataset=synthetic", "hidden_size=16", "max_len=10", "num_heads=1"]
    code, err, _ = cli(capsys, "--trial", *settings, "lr=1e6", "max_epochs=3")
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: the trial diverged: training loss is nan at epoch 2 ")
    assert err[0].endswith("with lr=1e+06; lower the learning rate (e.g. lr=100000)")


# --- what a storage fault looks like ---------------------------------------------------------


def test_storage_faults_are_told_from_other_errors() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/out/ray/x")
    assert storage_fault(full) == "the disk is full (/out/ray/x)"
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("Tune failed") from inner
    except RuntimeError as outer:
        assert storage_fault(outer) == "the disk is full (/out/ray/x)"
    sqlite = Exception("(sqlite3.OperationalError) database or disk is full\n[SQL: UPDATE runs]")
    assert storage_fault(sqlite, store="sqlite:////o/m.db") == (
        "the disk is full (sqlite:////o/m.db: database or disk is full)"
    )
    ray_text = "ray::train()\n  File x\nOSError: [Errno 30] Read-only file system: '/o/c'\n"
    assert storage_fault(ray_text) == "the file system is read-only (Read-only file system: '/o/c')"
    assert storage_fault("TrainingDiverged: training loss is nan at epoch 1") is None
    assert storage_fault(FileNotFoundError(errno.ENOENT, "missing", "/x")) is None
    assert storage_fault(ValueError("bad [Errno 2] thing")) is None


def one_line(error: Exception) -> str:
    try:
        raise error
    except Exception:
        record = logging.LogRecord(
            "ray.tune", logging.ERROR, "f", 1, "Trial task failed for %s", ("t1",), sys.exc_info()
        )
    assert OneLineErrors().filter(record)
    return logging.Formatter().format(record)


def test_tune_failures_log_one_line_without_traceback() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/o/x")
    assert one_line(full) == "Trial task failed for t1 (the disk is full (/o/x))"
    remote = RuntimeError("ray::train()\n  File x, line 3\nTrainingDiverged: loss nan at epoch 2")
    assert one_line(remote) == "Trial task failed for t1 TrainingDiverged: loss nan at epoch 2"
    store = RuntimeError("(sqlite3.IntegrityError) UNIQUE\n[SQL: x]\n(Background on this error)")
    assert one_line(store).endswith("t1 RuntimeError: (sqlite3.IntegrityError) UNIQUE")


def test_a_reattached_run_logs_no_epoch_twice(tmp_path: Path) -> None:
    uri = store.default_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = store.ensure_experiment(client, "faults", uri)
    tags = {"awr.kind": "trial", "mlflow.parentRunId": "p", "ray_trial_id": "t1"}
    valid = {"ndcg_5": 0.1}

    def epoch(e: int) -> EpochRecord:
        return EpochRecord(e, 1.0 / e, 0.5, 2.0, 0.1, valid, e, 0.1)

    run = tracking.TrialRun.attach(uri, experiment, tags, {}, "a")
    for e in (1, 2):
        run.log_epoch(epoch(e))
    again = tracking.TrialRun.attach(uri, experiment, tags, {}, "a")  # resumed from epoch 1
    for e in (2, 3):
        again.log_epoch(epoch(e))
    for key in ("train/loss", "valid/ndcg_5"):
        steps = [m.step for m in client.get_metric_history(run.run_id, key)]
        assert sorted(steps) == [1, 2, 3], (key, steps)


# --- real drivers (slow) ---------------------------------------------------------------------


def alive(snapshot: dict[int, int]) -> list[int]:
    return sorted(pid for pid, ticks in snapshot.items() if start_ticks(pid) == ticks)


@pytest.mark.slow
def test_sigkill_leaves_no_ray_process_once_reaped(tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    driver = launch(out, log)
    try:
        wait_for_finished(store.default_tracking_uri(out), log, 1, driver, limit=600)
        session = json.loads((out / SESSION_FILE).read_text())["session_dir"]
        ray = ray_processes(driver.pid)
        seen = session_processes(session)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert len(ray) >= 4 and set(ray) <= set(seen)  # the finder sees all of the driver's Ray
    time.sleep(2)
    left = alive(ray)
    print(f"Ray processes of the driver: {len(ray)}; alive 2 s after SIGKILL: {len(left)}")
    assert set(left) <= set(session_processes(session))  # and every leftover
    assert reap_leftovers(out) <= len(left)
    assert alive(ray) == [] and session_processes(session) == []
    assert not (out / SESSION_FILE).exists()


@pytest.mark.slow
def test_two_drivers_started_at_once_one_runs_one_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    drivers = [launch(out, log) for log in logs]
    try:
        deadline = time.monotonic() + 60
        while all(d.poll() is None for d in drivers) and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = [i for i, d in enumerate(drivers) if d.poll() is not None]
        assert len(refused) == 1, [log.read_text() for log in logs]
        loser, winner = drivers[refused[0]], drivers[1 - refused[0]]
        assert loser.returncode == 2
        text = logs[refused[0]].read_text().strip().splitlines()
        assert text == [
            f"error: another sweep driver (pid {winner.pid}) is running in {out}; wait for it to "
            "end, or use another --out"
        ]
        wait_for_finished(store.default_tracking_uri(out), logs[1 - refused[0]], 0, winner, 600)
        assert json.loads((out / SESSION_FILE).read_text())["driver_pid"] == winner.pid
        os.killpg(winner.pid, signal.SIGINT)
        assert winner.wait(timeout=120) == 130
    finally:
        for driver in drivers:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        reap_leftovers(out)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full."""
    path = folder / "filler"
    with path.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * MiB)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return path


@pytest.mark.slow
def test_a_disk_that_fills_under_a_sweep_ends_in_one_line_and_resumes(
    mount_point: Path, tmp_path: Path
) -> None:
    size = (MIN_FREE_BYTES + RESERVE_BYTES) // MiB + 24
    mount_tmpfs(mount_point, f"size={size}m")
    out, log = mount_point / "out", tmp_path / "sweep.log"
    uri = store.default_tracking_uri(out)
    drivers = [launch(out, log)]
    try:
        wait_for_finished(uri, log, 1, drivers[0], limit=600)
        filler = fill(mount_point)
        code = drivers[0].wait(timeout=300)
        text = log.read_text()
        statuses = Counter(r.info.status for r in trial_runs(uri) + parent_runs(uri))
        print(f"full disk: exit {code}; runs {dict(statuses)}; last line {text.splitlines()[-1]}")
        assert code == 2, text
        assert text.splitlines()[-1].startswith("error: the sweep stopped: the disk is full ")
        assert text.splitlines()[-1].endswith(f"--sweep {SWEEP} --out {out} --resume")
        assert "Traceback" not in text, text
        assert statuses["RUNNING"] == 0 and statuses["FAILED"] >= 1, statuses

        filler.unlink()
        drivers.append(launch(out, log, "--resume"))
        assert drivers[1].wait(timeout=400) == 0, log.read_text()
    finally:
        for driver in drivers:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        reap_leftovers(out)
    runs = trial_runs(uri)
    assert Counter(r.info.status for r in runs) == {"FINISHED": 6}
    client = MlflowClient(tracking_uri=uri)
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "valid/ndcg_5")]
        assert sorted(steps) == list(range(1, int(run.data.metrics["epochs_run"]) + 1))


@pytest.mark.slow
def test_an_enospc_at_a_driver_write_fails_the_open_runs(
    ray_local: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a mount: ENOSPC injected where the driver settles a unit's runs."""
    out = tmp_path / "out"

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "mlflow.db"))

    monkeypatch.setattr("awr.sweep.unit.settle_children", full)
    with pytest.raises(StorageError) as caught:
        run_sweep(tiny(), SweepOptions(name="tiny", out=out))
    assert str(caught.value) == (
        f"the sweep stopped: the disk is full ({out}/mlflow.db); 1 open MLflow run ended FAILED; "
        f"once fixed, continue with: python orchestrate.py --sweep tiny --out {out} --resume"
    )
    uri = store.default_tracking_uri(out)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    parent = next(r for r in runs if r.data.tags["awr.kind"] == "parent")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["error"].startswith("storage fault: the disk is full")
    assert "RUNNING" not in {r.info.status for r in runs}

    monkeypatch.undo()
    assert run_sweep(tiny(), SweepOptions(name="tiny", out=out, resume=True)) == 0
    runs = client.search_runs([experiment], max_results=1000)
    assert Counter(r.info.status for r in runs) == {"FINISHED": 6, "FAILED": 1}  # lr=1e6 fails
