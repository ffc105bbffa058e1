"""awr's command line, run from a clone: `python orchestrate.py --sweep`, `--trial key=value`,
`--data-stats NAME`, `--list`, `--report SWEEP`, `--ui` (or subcommands: `python orchestrate.py
sweep --help`). The same as the installed `awr` command; see awr/cli/."""

from __future__ import annotations

import sys

import awr.cli


def main(argv: list[str] | None = None) -> int:
    """The command line `argv` (default: sys.argv[1:]); returns the exit code."""
    return awr.cli.main(argv, prog="orchestrate.py")


if __name__ == "__main__":
    sys.exit(main())
