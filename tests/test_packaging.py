"""A non-editable install (a wheel built from a copy of the working tree, installed into a fresh
venv) gives a working `awr` command, outside the clone, and puts only awr's own top-level
packages into site-packages (never `tests`). Slow: it builds a wheel.

The fresh venv reaches the dependencies (torch, Ray, MLflow, ...) through a path file naming this
environment's site-packages, so nothing is downloaded; awr itself comes only from the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"awr", "analysis", "sweeps"}  # what the wheel installs (see pyproject.toml)


def run(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """A command in `cwd`, which is also its home; pip keeps no cache there."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(cwd), PIP_NO_CACHE_DIR="1", AWR_NO_DOWNLOAD="1")
    command = [str(a) for a in argv]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def copy_working_tree(target: Path) -> None:
    """The files git tracks or would track (not ignored), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.slow
def test_a_wheel_installs_a_working_awr_command_and_no_tests(tmp_path: Path) -> None:
    source, wheels, work, home = (tmp_path / name for name in ("src", "wheels", "work", "home"))
    for folder in (source, work, home):
        folder.mkdir()
    copy_working_tree(source)
    pip = (sys.executable, "-m", "pip")
    built = run(*pip, "wheel", "-q", "--no-deps", "-w", wheels, source, cwd=work)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("awr-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run(python, "-c", purelib, cwd=work).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = run(*pip, "--python", python, "install", "-q", "--no-deps", wheel, cwd=work)
    assert installed.returncode == 0, installed.stderr

    records = next(site.glob("awr-*.dist-info")).joinpath("RECORD").read_text().splitlines()
    paths = {line.split(",")[0] for line in records}
    tops = {path.split("/")[0] for path in paths}
    assert {t for t in tops if not t.endswith(".dist-info") and t != ".."} == TOP_LEVEL
    assert "../../../bin/awr" in paths  # the console script; no tests, no orchestrate module

    imported = "import awr, analysis, sweeps; print(awr.__file__, sweeps.__file__)"
    where = run(python, "-c", imported, cwd=home)
    assert where.stdout.split() and all(p.startswith(str(site)) for p in where.stdout.split())

    awr = venv / "bin" / "awr"
    helped = run(awr, "--help", cwd=home)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: awr [-h]")
    listed = run(awr, "--list", cwd=home)
    assert listed.returncode == 0, listed.stderr
    assert "quick: ML-1M, SASRec and STOSA" in listed.stdout
    assert "stage 1: 8 trials (ml-1m/sasrec 4, ml-1m/stosa 4)" in listed.stdout
    refused = run(awr, "list", "--port", "1", cwd=home)
    assert (refused.returncode, refused.stderr) == (
        2,
        "error: --port does not apply to list (--port is for ui); see awr list --help\n",
    )
    assert sorted(p.name for p in home.iterdir()) == []  # the commands wrote nothing here
