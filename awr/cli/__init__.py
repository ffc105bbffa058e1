"""awr's command line: the `awr` command (pyproject's console script) and orchestrate.py.

    awr --sweep [NAME]            run a sweep (default: quick) with local Ray   (awr sweep NAME)
    awr --trial key=value ...     one local trial, no Ray; prints a JSON line   (awr trial ...)
    awr --data-stats NAME         users, items, interactions, lengths           (awr data-stats)
    awr --list                    the sweeps and their trial counts             (awr list)
    awr --report SWEEP            tables and figures from MLflow, under --out   (awr report)
    awr --ui                      the MLflow UI for a sweep's store             (awr ui)

parser.py declares the commands and options, commands.py runs them, store.py finds the MLflow
store a command reads, ui.py serves the UI. A fault the user can fix (an AwrError,
awr/errors.py) is one line `error: ...` on stderr and exit 2; a real bug keeps its traceback.
"""

from __future__ import annotations

import os
import sys

INTERRUPTED = 130


def main(argv: list[str] | None = None, prog: str = "awr") -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code. `prog` is
    the command's name in help and error lines."""
    from awr.cli.commands import COMMAND_FUNCTIONS
    from awr.cli.parser import parse
    from awr.errors import AwrError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(argv, prog)
    except SystemExit as exit:  # --help (0) or a usage error, already printed (2)
        return int(exit.code or 0)
    args.program = "python orchestrate.py" if prog == "orchestrate.py" else prog  # resume hints
    if args.no_download:  # the environment reaches load_dataset in this process and Ray's
        os.environ["AWR_NO_DOWNLOAD"] = "1"
    try:
        return COMMAND_FUNCTIONS[args.command](args)
    except AwrError as error:  # a fault the user can fix; anything else is a bug: traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def console() -> None:
    """The `awr` console script."""
    sys.exit(main())
