"""The command line refuses what it cannot do: each fault is one `error: ...` line on stderr,
exit 2, no traceback, and nothing is left behind. Also the `--datasets` override of a sweep's
datasets. Everything runs in this process (orchestrate.main) in a fresh working folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import orchestrate
from awr.config import TrialConfig
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
    argv = ["--sweep", "test_sweep_fixtures:tiny", "--dry-run", "--datasets", "mine.txt,synthetic"]
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
