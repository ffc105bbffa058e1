"""The command line refuses what it cannot do: each fault is one `error: ...` line on stderr,
exit 2, no traceback, and nothing is left behind. Also the `--datasets` override of a sweep's
datasets. Everything runs in this process (orchestrate.main) in a fresh working folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import orchestrate
from awr.config import TrialConfig
from awr.store import sqlite_path
from awr.sweep import Axis, Budget, Cell, Sweep, SweepError
from awr.sweep.options import dataset_list, with_datasets
from awr.sweep.plan import Unit, dataset_slug, plan_units

SEQ_FILE = "1 1 2 3 4\n2 2 3 4 5\n3 1 3 5 2\n"  # seq format: user item item ...


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, the current directory for the test."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    """orchestrate.main in this process: (exit code, stderr lines, stdout)."""
    code = orchestrate.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- item 1: --datasets ------------------------------------------------------------------------


def two_dataset_sweep() -> Sweep:
    """Two datasets with different settings per cell, an axis on one cell."""
    sasrec = TrialConfig(dataset="synthetic", max_len=20, hidden_size=16, num_heads=1)
    return Sweep(
        name="two",
        description="",
        cells=(
            Cell(sasrec, axes=(Axis("num_layers", (1, 2)),)),
            Cell(sasrec.replace(backbone="stosa", max_len=30)),
            Cell(sasrec.replace(dataset="beauty", max_len=50)),
        ),
        budget=Budget(max_epochs=2, patience=1),
        seeds=(1,),
    )


def test_with_datasets_keeps_known_cells_and_copies_the_first_datasets_cells() -> None:
    sweep = two_dataset_sweep()
    new = with_datasets(sweep, ("beauty", "/data/mine.txt", "beauty"))
    got = [(c.dataset, c.backbone, c.settings.max_len, c.axes) for c in new.cells]
    layers = (Axis("num_layers", (1, 2)),)
    assert got == [
        ("beauty", "sasrec", 50, ()),  # beauty's own cell, as defined
        ("/data/mine.txt", "sasrec", 20, layers),  # a copy of synthetic's cells
        ("/data/mine.txt", "stosa", 30, ()),
    ]
    assert dataclasses.replace(new, cells=sweep.cells) == sweep  # nothing else changed
    with pytest.raises(SweepError, match="at least one dataset"):
        with_datasets(sweep, ())


def test_dataset_list_keeps_names_and_makes_paths_absolute(workdir: Path) -> None:
    assert dataset_list("ml-1m, mine.txt,ml-1m,synthetic") == (
        "ml-1m",
        str(workdir / "mine.txt"),
        "synthetic",
    )
    with pytest.raises(SweepError, match="empty entry"):
        dataset_list("ml-1m,,beauty")


def test_a_dataset_path_gives_a_folder_safe_unit_name() -> None:
    assert dataset_slug("ml-1m") == "ml-1m"
    slug = dataset_slug("/data/my data/mine.txt.gz")
    assert slug.startswith("mine-") and len(slug) == len("mine-") + 8
    assert dataset_slug("/other/mine.txt") != dataset_slug("/data/mine.txt")
    unit = Unit("quick", 1, "/data/mine.txt", "sasrec", 4)
    assert "/" not in unit.name and unit.name.startswith("quick-stage1-mine-")
    assert unit.key == "1//data/mine.txt/sasrec"


def test_dry_run_shows_the_datasets_given(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "mine.txt").write_text(SEQ_FILE)
    argv = ["--sweep", "sweep_fixtures:tiny", "--dry-run", "--datasets", "mine.txt,synthetic"]
    code, err, out = cli(capsys, *argv)
    assert (code, err) == (0, [])
    mine = str(workdir / "mine.txt")
    assert f"cell {mine}/sasrec: dataset={mine} hidden_size=16 max_len=10" in out
    assert f"stage 1 {mine} sasrec: 3 trials" in out and "stage 2 synthetic sasrec: 2" in out
    assert "total: 10 trials (stage 1 6, stage 2 4)" in out
    assert f"data:\n    {mine}: a file\n    synthetic: generated" in out
    assert tree(workdir) == ["mine.txt"]  # nothing created
    units = plan_units(with_datasets(two_dataset_sweep(), (mine,)))
    assert [(u.dataset, u.backbone) for u in units] == [(mine, "sasrec"), (mine, "stosa")]


def test_a_missing_dataset_file_is_one_line(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    code, err, out = cli(capsys, "--sweep", "--dry-run", "--datasets", "nofile.txt")
    assert code == 2 and out == ""
    assert err == [
        f"error: {workdir / 'nofile.txt'}: unknown dataset and no such file; valid names: "
        "ml-1m, beauty, beauty-5core, anime, synthetic, or a path"
    ]
    assert tree(workdir) == []


# --- item 2: one error line for each fault -----------------------------------------------------


def one_error(capsys: pytest.CaptureFixture, folder: Path, *argv: str) -> str:
    """Run argv, expecting exit 2, no stdout, one stderr line and nothing written in `folder`;
    returns that line."""
    code, err, out = cli(capsys, *argv)
    assert (code, out, len(err)) == (2, "", 1), (code, out, err)
    assert err[0].startswith("error: ")
    assert tree(folder) == []
    return err[0]


def test_cuda_on_a_cpu_only_torch_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    line = one_error(capsys, workdir, "--trial", "dataset=synthetic", "device=cuda")
    assert line.startswith(
        f"error: device=cuda: this torch ({torch.__version__}) is a CPU-only build; install the"
    )
    assert line.endswith("or use device=cpu")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    line = one_error(capsys, workdir, "trial", "dataset=synthetic", "device=cuda:2")
    assert line.startswith("error: device=cuda:2: torch sees 2 CUDA devices (CUDA_VISIBLE_DEVICES")
    assert line.endswith("use device=cpu or cuda:0..cuda:1")


def test_an_unknown_device_or_no_epochs_is_refused_by_the_config(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    line = one_error(capsys, workdir, "--trial", "device=tpu")
    assert line == "error: unknown device 'tpu'; valid: cpu, cuda, cuda:N"
    for device in ("cpu", "cuda", "cuda:0", "cuda:11"):
        assert TrialConfig(device=device).device == device
    for device in ("cuda:", "cuda:x", "gpu", "CPU", "cuda:-1"):
        with pytest.raises(ValueError, match="unknown device"):
            TrialConfig(device=device)
    line = one_error(capsys, workdir, "--trial", "dataset=synthetic", "max_epochs=0")
    assert line == "error: max_epochs must be >= 1, got 0"
    assert TrialConfig(max_epochs=1).max_epochs == 1
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        TrialConfig(patience=0)


def test_options_that_do_not_apply_are_named(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    line = one_error(capsys, workdir, "--list", "--resume", "--port", "1")
    assert line == (
        "error: --resume, --port do not apply to --list (--resume is for --sweep; --port is "
        "for --ui); see orchestrate.py --help"
    )
    line = one_error(capsys, workdir, "--data-stats", "ml-1m", "--dry-run")
    assert line == (
        "error: --dry-run does not apply to --data-stats (--dry-run is for --sweep); "
        "see orchestrate.py --help"
    )
    line = one_error(capsys, workdir, "--trial", "--tracking-uri", "sqlite:///x.db")
    assert "--tracking-uri is for --sweep, --report, --ui" in line
    line = one_error(capsys, workdir, "list", "--resume", "--port=1")
    assert line == (
        "error: --resume, --port do not apply to list (--resume is for sweep; --port is for "
        "ui); see orchestrate.py list --help"
    )
    line = one_error(capsys, workdir, "sweep", "quick", "--bogus")
    assert line == "error: unrecognized arguments: --bogus; see orchestrate.py sweep --help"
    line = one_error(capsys, workdir, "--sweep", "--list")
    assert line.startswith("error: argument --list: not allowed with argument --sweep")


def test_each_command_has_its_own_help(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert orchestrate.main(["sweep", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--datasets" in text and "--dry-run" in text and "--port" not in text
    assert orchestrate.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "--port PORT           --ui: port" in text and "COMMAND --help" in text
    assert tree(workdir) == []


def test_gpus_the_machine_lacks_are_refused_before_anything_starts(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from awr.sweep import options

    monkeypatch.setattr(options, "local_gpus", lambda: 1)
    monkeypatch.setattr(options, "local_cpus", lambda: 4)
    monkeypatch.setattr(options, "machine", lambda: "this machine")
    for extra in (["--dry-run"], ["--out", str(workdir / "out")]):
        line = one_error(capsys, workdir, "--sweep", "--gpus-per-trial", "5", *extra)
        assert line == "error: 5 GPUs per trial, but this machine has 4 CPUs and 1 GPUs"
    code, err, out = cli(capsys, "--sweep", "--dry-run", "--gpus-per-trial", "0.5")
    assert code == 0 and "1 CPU, 0.5 GPU per trial on cuda, up to 2 at once (this machine: " in out


def test_dry_run_says_which_dataset_is_missing_and_how_to_get_it(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = workdir / "no-data"
    line = one_error(capsys, workdir, "--sweep", "--dry-run", "--data-dir", str(missing))
    assert line == (  # the tests run with AWR_NO_DOWNLOAD=1
        "error: dataset 'ml-1m' is not in the data dir and downloading is off (--no-download or "
        "AWR_NO_DOWNLOAD): download https://files.grouplens.org/datasets/movielens/ml-1m.zip "
        f"and put it at {missing}/ml-1m/ml-1m.zip (it is unpacked and preprocessed on first use)"
    )
    monkeypatch.delenv("AWR_NO_DOWNLOAD", raising=False)
    code, err, out = cli(capsys, "--sweep", "--dry-run", "--data-dir", str(missing))
    assert (code, err) == (0, [])
    assert out.endswith(
        f"data:\n    ml-1m: not in the data dir {missing} (it does not exist yet and is "
        "created); downloaded from https://files.grouplens.org/datasets/movielens/ml-1m.zip "
        "on first use\n"
    )
    argv = ["--sweep", "--dry-run", "--datasets", "anime", "--data-dir", str(missing)]
    line = one_error(capsys, workdir, *argv)
    assert line.startswith(f"error: {missing}/anime/rating.csv: dataset 'anime' not found: ")
    assert line.endswith("download its rating.csv and put it at this path")


def test_the_bench_refuses_a_bad_dataset_key_or_device_in_one_line(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    from awr.bench import cli as bench

    def bench_error(*argv: str) -> str:
        assert bench.cli([*argv, "--out", str(workdir / "bench.json")]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
        assert tree(workdir) == []
        return captured.err.strip()

    line = bench_error("--datasets", "synthetic:tiny,nofile.txt")
    assert line.startswith("error: nofile.txt: unknown dataset and no such file; valid names:")
    assert bench_error("--set", "bogus=1").startswith("error: unknown key 'bogus'; valid keys:")
    assert bench_error("--set", "lr=fast") == "error: lr expects float, got 'fast'"
    assert bench_error("--device", "tpu") == "error: unknown device 'tpu'; valid: cpu, cuda, cuda:N"


def test_a_relative_tracking_uri_is_read_from_the_current_folder(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    from awr.cli.store import tracking_uri_for

    assert tracking_uri_for("sqlite:///a/b.db") == f"sqlite:///{workdir}/a/b.db"
    assert tracking_uri_for("sqlite:////abs/b.db") == "sqlite:////abs/b.db"
    assert tracking_uri_for("http://host:5000") == "http://host:5000"
    for command in ("--report quick", "--ui"):
        argv = [*command.split(), "--tracking-uri", "sqlite:///store/mlflow.db"]
        line = one_error(capsys, workdir, *argv)  # no store created in its place
        assert line == f"error: no MLflow store at {workdir}/store/mlflow.db; check --tracking-uri"


# --- item 5: reports under --out; report and ui never create a store; the UI server ---------


def test_report_and_ui_on_a_folder_without_a_store_create_nothing(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = workdir / "empty"
    empty.mkdir()
    for argv in (["--report", "quick"], ["report", "quick"], ["--ui"], ["ui", "--port", "1"]):
        code, err, out = cli(capsys, *argv, "--out", str(empty))
        assert (code, out) == (2, "")
        assert err == [
            f"error: no MLflow store at {empty}/mlflow.db; run a sweep with --out {empty} "
            "first, or give the store with --tracking-uri"
        ]
        assert tree(workdir) == ["empty"]
    line = one_error(capsys, empty, "--report", "quick", "--out", str(workdir / "missing"))
    assert line.startswith(f"error: no MLflow store at {workdir}/missing/mlflow.db; run a sweep")
    assert tree(workdir) == ["empty"]


def test_report_is_written_under_out(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analysis.report

    calls = []

    def build_report(sweep: str, uri: str, out_dir: Path, bench: Path | None) -> Path:
        calls.append((sweep, uri, out_dir, bench))
        return out_dir / "report.md"

    monkeypatch.setattr(analysis.report, "build_report", build_report)
    for name in ("a", "b"):  # two folders of the same sweep: two reports
        (workdir / name).mkdir()
        (workdir / name / "mlflow.db").write_bytes(b"")
        code, err, out = cli(capsys, "--report", "fixed", "--out", name)
        assert (code, err) == (0, [])
        assert out == f"report written to {workdir / name}/reports/fixed/report.md\n"
    assert calls == [
        ("fixed", f"sqlite:///{workdir / name}/mlflow.db", workdir / name / "reports/fixed", None)
        for name in ("a", "b")
    ]


@pytest.mark.slow
def test_a_real_report_goes_under_out(
    workdir: Path, capsys: pytest.CaptureFixture, store_uri: str
) -> None:
    store = sqlite_path(store_uri)
    out = workdir / "runs" / "layers-a"
    out.mkdir(parents=True)
    (out / "mlflow.db").write_bytes(store.read_bytes())  # a copy: the report run lands here
    code, err, text = cli(capsys, "--report", "layers", "--out", "runs/layers-a")
    assert (code, text) == (0, f"report written to {out}/reports/layers/report.md\n")
    assert (out / "reports" / "layers" / "table3.csv").is_file()
    assert sorted(p.name for p in workdir.iterdir()) == ["runs"]  # no ./reports


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_ui_says_at_once_when_its_port_is_taken(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    import socket

    (workdir / "mlflow.db").write_bytes(b"")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err, out = cli(capsys, "--ui", "--out", str(workdir), "--port", str(port))
    assert (code, out) == (2, "")
    assert err == [
        f"error: port {port} on 127.0.0.1 is already in use (another UI?); choose another "
        "with --port"
    ]
    assert tree(workdir) == ["mlflow.db"]


def test_a_served_ui_stops_on_sigterm_with_its_server(tmp_path: Path) -> None:
    """serve() runs a stand-in server (http.server); SIGTERM to the command stops both."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    code = (
        "import sys; from awr.cli.ui import serve; "
        f"sys.exit(serve({server!r}, {port}, 'test server'))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = iter(process.stdout.readline, "")  # the server's own lines come here too
        first = next(line for line in lines if line.startswith("test server"))
        assert first == f"test server at http://127.0.0.1:{port} (Ctrl-C or SIGTERM stops it)\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it serves
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        rest = [line for line in process.stdout.read().splitlines() if "test server" in line]
        assert rest == ["stopping the test server", "test server stopped"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # the server is gone with it: the port is free
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_a_killed_ui_command_takes_its_server_with_it(tmp_path: Path) -> None:
    """SIGKILL to the command (no handler runs): its server still ends (Linux)."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    code = f"import sys; from awr.cli.ui import serve; sys.exit(serve({server!r}, {port}, 'x'))"
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    lines = iter(process.stdout.readline, "")
    assert next(line for line in lines if line.startswith("x at http://"))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break  # nothing listens: the server ended
        assert time.monotonic() < deadline, "the server outlived its command"
        time.sleep(0.2)


def test_the_ui_without_full_mlflow_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    from awr.cli import ui
    from awr.cli.store import CommandError

    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ui.importlib.metadata, "distribution", missing)
    with pytest.raises(CommandError, match=r"mlflow-skinny has no UI\): pip install 'awr\[ui\]'"):
        ui.start_ui("sqlite:////nowhere/mlflow.db", free_port())


# --- one error base: a fault the user can fix is one line, a bug keeps its traceback ----------


def test_every_error_raised_on_purpose_is_an_awr_error() -> None:
    from analysis.runs import AnalysisError
    from awr.bench.gpu_plan import PlanError
    from awr.cli.store import CommandError
    from awr.config import ConfigError
    from awr.data.errors import DataError
    from awr.errors import AwrError
    from awr.store import StoreError
    from awr.sweep.folder import StorageError
    from awr.train.trainer import TrainingDiverged

    purposeful = (AnalysisError, CommandError, ConfigError, DataError, StoreError, StorageError)
    for error in (*purposeful, PlanError, TrainingDiverged):
        assert issubclass(error, AwrError), error
        assert issubclass(error, SweepError) == (error is StorageError)


def test_an_awr_error_is_one_line_and_a_bug_keeps_its_traceback(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sweeps
    from awr.errors import AwrError

    def refused() -> str:
        raise AwrError("the sweeps cannot be listed here; do X instead")

    monkeypatch.setattr(sweeps, "describe_sweeps", refused)
    line = one_error(capsys, workdir, "--list")
    assert line == "error: the sweeps cannot be listed here; do X instead"

    def bug() -> str:  # e.g. a ValueError from inside pandas or torch: not the user's fault
        raise ValueError("cannot reshape array of size 3 into shape (2,)")

    monkeypatch.setattr(sweeps, "describe_sweeps", bug)
    with pytest.raises(ValueError, match="cannot reshape"):  # reaches Python: a traceback
        orchestrate.main(["--list"])
    assert "error:" not in capsys.readouterr().err
