"""The command line's grammar, declared once: the commands, and each option with the commands it
applies to. Two spellings are built from it:

    awr --sweep quick --dry-run          flags, as the README shows (also python orchestrate.py)
    awr sweep quick --dry-run            subcommands, each with its own --help

Both give the same Namespace: `command` (a COMMANDS key), `target` (the sweep, the trial's
KEY=VALUE pairs, the dataset or the report's sweep) and one attribute per option. An option
given to a command it does not apply to is an error naming it (with flags, after parsing;
with subcommands, argparse's own "unrecognized arguments"). Errors are one `error: ...` line,
exit 2."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

SWEEP, TRIAL, STATS, LIST, REPORT, UI = "sweep", "trial", "data-stats", "list", "report", "ui"


@dataclass(frozen=True)
class Command:
    """One command: its flag spelling's argparse keywords (`target` None: a plain switch) and
    its subcommand's positional argument (None: none)."""

    help: str
    target: dict[str, Any] | None
    positional: dict[str, Any] | None


COMMANDS: dict[str, Command] = {
    SWEEP: Command(
        "run the named sweep (default: quick); see --list",
        dict(nargs="?", const="quick", metavar="NAME"),
        dict(nargs="?", default="quick", metavar="NAME"),
    ),
    TRIAL: Command(
        "one local trial without Ray; keys are TrialConfig fields",
        dict(nargs="*", metavar="KEY=VALUE"),
        dict(nargs="*", metavar="KEY=VALUE"),
    ),
    STATS: Command(
        "dataset statistics (a name or a path)", dict(metavar="NAME"), dict(metavar="NAME")
    ),
    LIST: Command("list the sweeps with trial counts", None, None),
    REPORT: Command(
        "write the report of a sweep (tables, figures) under --out",
        dict(metavar="SWEEP"),
        dict(metavar="SWEEP"),
    ),
    UI: Command("start the MLflow UI on 127.0.0.1 for a sweep's store", None, None),
}


@dataclass(frozen=True)
class Option:
    """A `--flag`, the commands it applies to, its default and the other argparse keywords."""

    flag: str
    commands: tuple[str, ...]
    help: str
    default: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def seed_list(text: str) -> tuple[int, ...]:
    """`--seeds 2,3` -> (2, 3): distinct integers, at least one."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        message = f"expected integers separated by commas, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeated seed in {text!r}")
    return seeds


DATA = (SWEEP, TRIAL, STATS)
STORE = (SWEEP, REPORT, UI)
OPTIONS: tuple[Option, ...] = (
    Option(
        "--data-dir",
        DATA,
        "dataset folder, where named datasets are downloaded on first use "
        "(default: $AWR_DATA_DIR, else ~/.cache/awr/data)",
        kwargs=dict(metavar="DIR"),
    ),
    Option(
        "--no-download",
        DATA,
        "never download a missing dataset: fail naming the URL and where to put it "
        "(also AWR_NO_DOWNLOAD=1)",
        False,
        dict(action="store_true"),
    ),
    Option(
        "--out",
        (SWEEP, TRIAL, REPORT, UI),
        "a sweep's output folder: its MLflow store, state and reports (<out>/reports/<sweep>); "
        "for --trial, where per-user ranks go (default: runs/)",
        "runs",
        dict(metavar="DIR"),
    ),
    Option("--json", (TRIAL,), "also write the result JSON here", kwargs=dict(metavar="PATH")),
    Option(
        "--resume",
        (SWEEP,),
        "continue an interrupted sweep in --out",
        False,
        dict(action="store_true"),
    ),
    Option(
        "--dry-run",
        (SWEEP,),
        "print the plan and where each dataset comes from; start nothing",
        False,
        dict(action="store_true"),
    ),
    Option(
        "--datasets",
        (SWEEP,),
        "run the sweep's cells on these datasets instead of its own: names or paths of your "
        "own files, by commas (a dataset the sweep lacks takes its first dataset's settings)",
        kwargs=dict(metavar="NAMES"),
    ),
    Option("--address", (SWEEP,), "attach to a Ray cluster (auto or ray://host:port)"),
    Option(
        "--tracking-uri",
        STORE,
        "MLflow tracking URI (default: the sqlite store in --out; a relative sqlite:/// path "
        "is taken from the current folder)",
        kwargs=dict(metavar="URI"),
    ),
    Option(
        "--gpus-per-trial",
        (SWEEP,),
        "GPU fraction per trial (default: the sweep's; 0 on machines without GPUs)",
        kwargs=dict(type=float, metavar="FRACTION"),
    ),
    Option(
        "--seeds",
        (SWEEP,),
        "stage-2 seeds instead of the sweep's, e.g. 2,3 (with --resume: adds them)",
        kwargs=dict(type=seed_list),
    ),
    Option(
        "--pack-seeds",
        (SWEEP,),
        "train each stage-2 point's seeds as one packed model (default: the sweep's; unset, "
        "packed where trials run on GPUs)",
        kwargs=dict(action=argparse.BooleanOptionalAction),
    ),
    Option(
        "--checkpoint-seconds",
        (SWEEP,),
        "save a trial's checkpoint at most every S seconds and after its last epoch "
        "(default: the sweep's, 60; 0 = every epoch)",
        kwargs=dict(type=float, metavar="S"),
    ),
    Option(
        "--bench-json",
        (REPORT,),
        "benchmark JSON for the complexity table",
        kwargs=dict(metavar="PATH"),
    ),
    Option("--port", (UI,), "port of the UI (default 5000)", 5000, dict(type=int)),
)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, `error: ...`, with where to read more (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.fail(message, self.prog)

    def fail(self, message: str, help_of: str) -> NoReturn:
        print(f"error: {message}; see {help_of} --help", file=sys.stderr)
        raise SystemExit(2)


def flag(name: str) -> str:
    return f"--{name}"


def flag_help(option: Option) -> str:
    """An option's help in the flag spelling: which commands it is for, unless all."""
    if set(option.commands) == set(COMMANDS):
        return option.help
    return f"{', '.join(map(flag, option.commands))}: {option.help}"


def flag_parser(prog: str) -> Parser:
    """The flag spelling: exactly one command flag, then any options (checked afterwards)."""
    names = ", ".join(COMMANDS)
    parser = Parser(
        prog=prog,
        description="Attention weight refinement for sequential recommendation: trials, "
        "sweeps, reports.",
        epilog=f"The same as subcommands, each with its own help: {prog} COMMAND --help "
        f"(COMMAND: {names}).",
    )
    job = parser.add_mutually_exclusive_group(required=True)
    for name, command in COMMANDS.items():
        keywords = command.target if command.target is not None else dict(action="store_true")
        job.add_argument(flag(name), dest=f"job_{name}", help=command.help, **keywords)
    for option in OPTIONS:
        keywords = {"default": None, **option.kwargs}
        parser.add_argument(option.flag, help=flag_help(option), **keywords)
    return parser


def command_parser(prog: str) -> Parser:
    """The subcommand spelling: `prog COMMAND [target] [options]`, each command with only the
    options that apply to it."""
    parser = Parser(prog=prog, description="awr's commands (each has --help).")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        if command.positional is not None:
            sub.add_argument("target", **command.positional)
        for option in OPTIONS:
            if name in option.commands:
                keywords = {"default": None, **option.kwargs}
                sub.add_argument(option.flag, help=option.help, **keywords)
    return parser


def parse(argv: list[str], prog: str) -> argparse.Namespace:
    """The Namespace of either spelling (subcommands when the first word is a command), with
    the defaults filled in; options that do not apply to the command are an error."""
    if argv and argv[0] in COMMANDS:
        parser = command_parser(prog)
        args, extra = parser.parse_known_args(argv)
        args.target = getattr(args, "target", None)
        if extra:
            refuse_extra(parser, args.command, extra)
    else:
        parser = flag_parser(prog)
        args = parser.parse_args(argv)
        chosen = [name for name in COMMANDS if getattr(args, f"job_{name}") not in (None, False)]
        args.command = chosen[0]
        args.target = getattr(args, f"job_{args.command}")
        given = [o for o in OPTIONS if getattr(args, o.dest) is not None]
        refuse(parser, args.command, [o for o in given if args.command not in o.commands])
    for option in OPTIONS:
        if getattr(args, option.dest, None) is None:
            setattr(args, option.dest, option.default)
    return args


def refuse(parser: Parser, command: str, wrong: list[Option], subcommands: bool = False) -> None:
    """An error naming each option given to `command` that it does not use, and what each is
    for (nothing when `wrong` is empty)."""
    if not wrong:
        return
    spell = str if subcommands else flag
    verb = "does" if len(wrong) == 1 else "do"
    uses = "; ".join(f"{o.flag} is for {', '.join(map(spell, o.commands))}" for o in wrong)
    where = f"{parser.prog} {command}" if subcommands else parser.prog
    names = ", ".join(o.flag for o in wrong)
    parser.fail(f"{names} {verb} not apply to {spell(command)} ({uses})", where)


def refuse_extra(parser: Parser, command: str, extra: list[str]) -> None:
    """Words a subcommand did not take: other commands' options by name, else argparse's."""
    words = {word.partition("=")[0] for word in extra}
    refuse(parser, command, [o for o in OPTIONS if o.flag in words], subcommands=True)
    parser.fail(f"unrecognized arguments: {' '.join(extra)}", f"{parser.prog} {command}")
