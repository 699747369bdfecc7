"""`gqa book`: execute the notebooks under a profile, build the HTML book, and check it."""

from __future__ import annotations

import argparse

from gqa.cli._common import CliError


def cmd_book(args: argparse.Namespace) -> int:
    from gqa_book.commands import require_checkout

    require_checkout()
    from gqa_book.book import build_book
    from gqa_book.reader import check_built_book

    if args.sync_launch:
        from gqa_book import launch

        changed = launch.sync()
        print(f"first cells name {launch.repository_url() or 'no repository'}: "
              f"{len(changed)} notebooks updated ({', '.join(changed) or 'none'})")
        return 0
    if args.check and args.no_html:
        raise CliError("--check needs the HTML build; drop --no-html")
    if args.pdf and args.no_html:
        raise CliError("--pdf needs the HTML build; drop --no-html")
    build_book(args.profile, force=args.force, html=not args.no_html, only=args.only)
    if args.pdf:
        from gqa.paths import display_path
        from gqa_book.reader import print_built_book

        printed = print_built_book()
        print(f"printed {display_path(printed['path'])}: {printed['pages']} pages from "
              f"{len(printed['by_page'])} pages of the book")
    if args.check:
        links, pages = check_built_book(args.profile)
        if links.broken or links.external_resources or not all(p.ok for p in pages):
            raise CliError("the built book failed its checks (see above)")
    return 0


def add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "book", help="execute the notebooks under a profile and build the HTML book",
        description="Validate the profile and look up the data every notebook reads (stopping with "
                    "the command that makes whatever is missing), execute each notebook with papermill "
                    "and the profile's parameters into book/_build, skipping notebooks whose inputs "
                    "(parameters, profile sections, data, gqa source, library versions) are unchanged, "
                    "then build the Jupyter Book offline with Sphinx warnings as errors.")
    p.add_argument("--profile", default="cpu",
                   help="a profile's name in notebooks/params/ (ci, cpu, gpu) or the path of a YAML file; "
                        "a profile can `extends:` another and override only what it names")
    p.add_argument("--force", action="store_true",
                   help="re-execute every notebook (or those of --only), and train the live model again")
    p.add_argument("--only", metavar="NOTEBOOK", action="append",
                   help="execute only this notebook (stem, repeatable); others must be cached")
    p.add_argument("--no-html", action="store_true", help="execute notebooks, skip the HTML build")
    p.add_argument("--sync-launch", action="store_true",
                   help="write book/_config.yml's repository.url (or $GQA_REPOSITORY_URL) into every notebook's "
                        "first cell, which installs the companion in a hosted runtime (Colab, Binder); then exit")
    p.add_argument("--pdf", action="store_true",
                   help="then print the whole book to book/_build/pdf/book.pdf with headless Chromium")
    p.add_argument("--check", action="store_true",
                   help="then check it as a reader would: internal links offline, and every page in "
                        "headless Chromium (images, a glued value, console errors), saving screenshots in "
                        "book/_build/screenshots/")
    p.set_defaults(func=cmd_book)
