"""`gqa run`: execute one chapter's notebook with papermill, its parameters checked like a profile's first."""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from pathlib import Path

from gqa.cli._common import CliError


def parse_value(text: str) -> object:
    """A parameter value as typed on the command line: a Python or YAML literal (numbers, lists, True, None,
    quoted strings), else the text itself. `[2048, 4096]` is a list, `1e5` a float, `fast` a string."""
    import yaml

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if not isinstance(value, str) else text


def cmd_run(args: argparse.Namespace) -> int:
    import yaml

    from gqa import profiles
    from gqa_book import book, notebook_params
    from gqa_book.commands import require_checkout

    require_checkout()
    notebook = Path(args.notebook)
    stem = notebook.stem
    stems = notebook_params.notebook_stems()
    if stem not in stems:
        raise CliError(f"{args.notebook}: not one of the book's notebooks ({', '.join(stems)})")
    out = Path(args.output)
    if out.suffix != ".ipynb":
        raise CliError(f"{args.output}: the output must be a .ipynb file")
    if not out.resolve().parent.is_dir():
        raise CliError(f"{args.output}: folder {out.resolve().parent} does not exist")
    overrides = {key: parse_value(value) for key, value in args.parameter or []}
    base = profiles.resolve(args.profile)
    with tempfile.TemporaryDirectory() as tmp:  # the overrides as a profile extending the chosen one
        mine = Path(tmp) / "run.yaml"
        mine.write_text(yaml.safe_dump({"extends": str(base), "notebooks": {stem: overrides}}))
        try:
            profile = notebook_params.load(mine)
        except profiles.ProfileError as e:
            raise CliError("\n".join(line.replace(str(mine), "-p") for line in e.problems)) from None
    name = args.profile if base.parent == profiles.PARAMS_DIR else str(base.resolve())  # what the notebook loads
    params = {**profile.notebook_parameters(stem), "profile": name}
    changed = ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "no overrides"
    print(f"running {stem} under profile {args.profile} with {changed}", file=sys.stderr)
    book.execute_notebook(book.NOTEBOOK_DIR / f"{stem}.ipynb", out, params)
    print(f"wrote {out} (render it as a page: gqa render {out})", file=sys.stderr)
    return 0


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="execute one chapter with other parameters (papermill), checked like a profile first",
        description="Execute one of the book's notebooks with papermill into OUTPUT, under a profile's parameters "
                    "(default cpu) with -p KEY VALUE overrides. Values are Python or YAML literals: "
                    "-p contexts '[2048, 4096, 8192]' is a list, -p bar_context 32768 a number. Every override is "
                    "checked as a profile's parameters are (name, type, range) before anything runs; a bad one "
                    "is one line naming the key, exit status 2.")
    p.add_argument("notebook", help="a notebook of notebooks/ (e.g. notebooks/01_cost_model.ipynb)")
    p.add_argument("output", help="the executed notebook to write (.ipynb)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a parameter to override (repeatable)")
    p.add_argument("--profile", default="cpu", help="the profile whose parameters the run starts from (default cpu)")
    p.set_defaults(func=cmd_run)
