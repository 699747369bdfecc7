"""The `gqa` command line. Each subcommand is a thin layer over the library, one module per command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from gqa.cli._common import CliError, _Parser
from gqa.cli.bench import add_bench
from gqa.cli.cost import add_cost
from gqa.cli.digitise import add_digitise
from gqa.cli.effect import add_effect
from gqa.cli.exercise import add_exercise
from gqa.cli.pilot import add_pilot
from gqa.cli.plan import add_fit_plan
from gqa.cli.profile import add_profile
from gqa.cli.readings import add_readings
from gqa.cli.train import add_data, add_sweep, add_train


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gqa",
        description="Cost-optimal grouped-query attention: cost, profile, train, fit and plan; check the paper.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    add_cost(sub)
    add_profile(sub)
    add_data(sub)
    add_train(sub)
    add_sweep(sub)
    add_pilot(sub)
    add_effect(sub)
    add_fit_plan(sub)
    add_bench(sub)
    add_digitise(sub)
    add_readings(sub)
    add_exercise(sub)
    add_plugin_commands(sub)
    return parser


class _NoOverride:
    """The subparsers as a plugin sees them: adding a command that already exists is an error."""

    def __init__(self, sub: argparse._SubParsersAction, taken: set[str]):
        self._sub, self._taken = sub, taken

    def add_parser(self, name: str, **kwargs):
        if name in self._taken:
            raise ValueError(f"it would replace the command `gqa {name}`")
        return self._sub.add_parser(name, **kwargs)


# The book's commands live in the book tools (package gqa_book, installed from booktools/ of a checkout),
# which register them under this entry-point group; the library never imports them.
COMMAND_GROUP = "gqa.commands"
BOOK_COMMANDS = {"book": "execute the notebooks and build the HTML book (a checkout's book tools)",
                 "render": "render an executed notebook as one HTML page (a checkout's book tools)",
                 "run": "execute one chapter with other parameters (a checkout's book tools)"}


def _needs_book_tools(args: argparse.Namespace) -> int:
    from gqa.paths import IN_CHECKOUT

    if IN_CHECKOUT:
        raise CliError("this command comes with the book tools, which this checkout has not installed: "
                       "`make setup` (or `pip install -e booktools`)")
    raise CliError("this command works on the book of a checkout of the repository, with its book tools "
                   "installed: git clone the repository, then run `make book` there (it installs them)")


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Commands registered by installed packages (the book tools' `book`, `render`, `run`); a book command
    whose tools are not installed is still listed, and says in one line what it needs. A plugin that fails
    to load (an editable install whose folder has gone) or that reuses a command's name is skipped with one
    warning line: it never stops the other commands."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=COMMAND_GROUP):
        try:
            register = entry.load()
            before = set(sub.choices)
            register(_NoOverride(sub, before))
        except Exception as e:  # noqa: BLE001 -- a broken plugin is named, never fatal
            print(f"gqa: warning: the commands of {entry.value} were not loaded ({type(e).__name__}: {e})",
                  file=sys.stderr)
    for name, help_text in BOOK_COMMANDS.items():
        if name not in sub.choices:
            # every argument is taken as it comes (no option prefix), so any invocation gets the one line
            p = sub.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_needs_book_tools)


# Which extra installs a missing module (named in the error instead of a traceback).
EXTRAS = {"torch": "models", "transformers": "models", "tokenizers": "models", "safetensors": "models",
          "papermill": "book", "matplotlib": "book", "myst_nb": "book", "jupyter_book": "book",
          "pypdf": "book", "websocket": "book", "nbformat": "book", "statsmodels": "book",
          "flash_attn": "cuda", "submitit": "cluster"}


def describe_error(e: BaseException) -> list[str]:
    """The lines a user sees for an error: its message, one line per problem; known kinds made plain."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        extra = EXTRAS.get(top)
        hint = f": pip install 'gqa[{extra}]' (or `make setup` in a checkout)" if extra else ""
        return [f"this command needs the Python package {top!r}, which is not installed{hint}"]
    if isinstance(e, (CliError, ValueError, FileNotFoundError, RuntimeError)):
        return str(e).splitlines() or [type(e).__name__]
    if isinstance(e, OSError):
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return [f"{e.strerror or e}{where}"]
    text = str(e).strip().splitlines()
    return [f"{type(e).__name__}: {text[0] if text else 'unexpected failure'} (GQA_DEBUG=1 shows the traceback)"]


def _deepest_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command that ran, `gqa bench train`'s rather than `gqa bench`'s."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) not in subs[0].choices:
            return parser
        parser = subs[0].choices[getattr(args, subs[0].dest)]


def _unrecognized(command: argparse.ArgumentParser, unknown: list[str]) -> str:
    """'unrecognized arguments: --contxt 3 (did you mean --context?)'."""
    import difflib

    options = [o for action in command._actions for o in action.option_strings if o.startswith("--")]
    guesses = [match for arg in unknown if arg.startswith("--")
               for match in difflib.get_close_matches(arg.split("=")[0], options, n=1)]
    hint = f" (did you mean {', '.join(dict.fromkeys(guesses))}?)" if guesses else ""
    return f"unrecognized arguments: {' '.join(unknown)}{hint}"


def main(argv: list[str] | None = None) -> int:
    """Run one command. Any failure becomes one line per problem, `gqa CMD: error: ...`, and exit status
    2; with the environment variable GQA_DEBUG=1 the traceback is shown instead."""
    if argv is None and hasattr(signal, "SIGPIPE"):  # the console command: `gqa ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # (never in a caller's process: it would kill it)
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by the (sub)command's own parser, with the closest option it has
            command = _deepest_parser(parser, args)
            command.error(_unrecognized(command, unknown))
    except SystemExit as e:  # --help (0) or a usage error (2, its one line already printed)
        return int(e.code or 0)
    try:
        with warnings.catch_warnings():
            def one_line(message, category, filename, lineno, file=None, line=None):  # no source line dump
                print(f"gqa {args.command}: warning: {message}", file=sys.stderr)

            warnings.showwarning = one_line
            from gqa.paths import check_environment

            check_environment()
            return args.func(args)
    except Exception as e:  # noqa: BLE001 -- the one error path of every command
        if os.environ.get("GQA_DEBUG"):
            raise
        for line in describe_error(e):
            print(f"gqa {args.command}: error: {line}", file=sys.stderr)
        return 2


__all__ = ["CliError", "build_parser", "main"]
