"""`gqa render`: an executed notebook as a standalone HTML page."""

from __future__ import annotations

import argparse
import sys

from gqa.cli._common import CliError


def cmd_render(args: argparse.Namespace) -> int:
    from gqa.render import render_html

    result = render_html(args.notebook, args.html)
    print(f"wrote {result.path}: {result.substituted} values in the prose, {result.figures} figures")
    if result.missing:
        print(f"gqa render: warning: the prose cites values this run never computed: {', '.join(result.missing)}",
              file=sys.stderr)
    if args.strict and result.missing:
        raise CliError(f"{len(result.missing)} cited values missing (--strict)")
    return 0


def add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="turn an executed notebook (a papermill run) into a standalone HTML page",
        description="Fill the prose's {glue:text} placeholders with the values the run glued, render "
                    "the Markdown, embed the figures and collapse the code: one HTML file that any "
                    "browser opens, e.g. after `papermill notebooks/06_paper_check.ipynb out.ipynb "
                    "-p context 524288`.")
    p.add_argument("notebook", help="an executed .ipynb")
    p.add_argument("--html", metavar="FILE", help="output page (default: the notebook's name with .html)")
    p.add_argument("--strict", action="store_true", help="exit 2 when the prose cites a value the run lacks")
    p.set_defaults(func=cmd_render)
