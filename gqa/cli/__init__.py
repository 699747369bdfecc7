"""The `gqa` command line. Each subcommand is a thin layer over the library, one module per command."""

from __future__ import annotations

import argparse
import signal
import sys

from gqa.cli._common import CliError, _Parser
from gqa.cli.bench import add_bench
from gqa.cli.book import add_book
from gqa.cli.cost import add_cost
from gqa.cli.digitise import add_digitise
from gqa.cli.plan import add_fit_plan
from gqa.cli.profile import add_profile
from gqa.cli.render import add_render
from gqa.cli.train import add_data, add_sweep, add_train


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gqa",
        description="Cost-optimal grouped-query attention: cost, profile, train, fit and plan.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    add_cost(sub)
    add_profile(sub)
    add_data(sub)
    add_train(sub)
    add_sweep(sub)
    add_fit_plan(sub)
    add_bench(sub)
    add_digitise(sub)
    add_book(sub)
    add_render(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):  # the console command: `gqa ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # (never in a caller's process: it would kill it)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ValueError, FileNotFoundError, RuntimeError) as e:
        for line in str(e).splitlines() or [type(e).__name__]:  # one line per problem, each prefixed
            print(f"gqa {args.command}: error: {line}", file=sys.stderr)
        return 2


__all__ = ["CliError", "build_parser", "main"]
