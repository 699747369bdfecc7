"""`gqa render`: executed notebooks (papermill runs) as a small site rendered as the book renders."""

from __future__ import annotations

import argparse
import sys

from gqa.cli._common import CliError


def cmd_render(args: argparse.Namespace) -> int:
    from gqa_book.render import render_site

    try:
        result = render_site(args.notebooks, args.out)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(f"wrote {result.path} ({len(result.pages)} page{'s' * (len(result.pages) > 1)}, "
          f"{result.substituted} values in the prose, {result.figures} figures)")
    if result.outside_references:
        print(f"gqa render: {result.outside_references} references to chapters not rendered here are shown as "
              "plain text", file=sys.stderr)
    if result.missing:
        print(f"gqa render: warning: the prose cites values this run never computed: {', '.join(result.missing)}",
              file=sys.stderr)
    if args.strict and result.missing:
        raise CliError(f"{len(result.missing)} cited values missing (--strict)")
    return 0


def add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="turn executed notebooks (papermill runs) into pages rendered as the book renders them",
        description="Build one or more executed notebooks with the book's own Jupyter Book configuration "
                    "(myst-nb: glued values in the prose, equations numbered, roles, figures with captions, "
                    "solutions in dropdowns; MathJax offline), execution off, into a folder whose index.html "
                    "opens the first, e.g. after `papermill notebooks/06_paper_check.ipynb out.ipynb -p "
                    "context 524288`. References to chapters not rendered show as plain text.")
    p.add_argument("notebooks", nargs="+", metavar="notebook", help="executed .ipynb files (papermill runs)")
    p.add_argument("--out", metavar="DIR", help="the folder to write (default: the first notebook's name + _html)")
    p.add_argument("--strict", action="store_true", help="exit 2 when the prose cites a value the run lacks")
    p.set_defaults(func=cmd_render)
