"""The book's commands, registered with `gqa` through the entry-point group `gqa.commands`."""

from __future__ import annotations

import argparse

from gqa.cli._common import CliError
from gqa.paths import IN_CHECKOUT, ROOT
from gqa_book.commands.book import add_book
from gqa_book.commands.render import add_render
from gqa_book.commands.run import add_run


def require_checkout() -> None:
    """The book is built from a checkout: one line saying so when this `gqa` is installed elsewhere."""
    if not IN_CHECKOUT:
        raise CliError(f"the book is built from a checkout of the repository, and this gqa is installed in {ROOT} "
                       "(no notebooks/ there): git clone the repository, then run `make book` in it")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """`gqa book`, `gqa render` and `gqa run`."""
    add_book(sub)
    add_render(sub)
    add_run(sub)
