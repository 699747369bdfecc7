"""The built book as a reader meets it: every page checked in headless Chromium (links offline, images,
captions, a glued value visible, no console errors) and the whole book printed to one PDF. `gqa_book.book`
builds; this module reads what it built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gqa.paths import BOOK_DIR, BUILD_DIR, ROOT
from gqa_book.notebook import glued_values

if TYPE_CHECKING:
    from gqa_book.browser import PageReport
    from gqa_book.linkcheck import LinkReport


# Every page of the book, and what must be visible on it: a glued value (notebook, name) or a text.
CHECKED_PAGES: dict[str, tuple[str, str] | str] = {
    "index.html": "Findings",
    "notebooks/00_what_reproduced.html": ("00_what_reproduced", "wr_n_readings"),
    "intro.html": "The question",
    "notation.html": "hardware-aware cost",
    "notebooks/01_cost_model.html": ("01_cost_model", "base_N"),
    "notebooks/02_attention.html": ("02_attention", "sweep_meta"),
    "notebooks/03_training.html": ("03_training", "n_train_tokens"),
    "notebooks/04_scaling_fits.html": ("04_scaling_fits", "min_r2"),
    "notebooks/05_cost_optimal.html": ("05_cost_optimal", "source"),
    "notebooks/06_paper_check.html": ("06_paper_check", "resid_family"),
    "run_it_yourself.html": "Exercises for a course",
    "teaching.html": "Lecture 1",
    "references.html": "CITATION.cff",
}
SCREENSHOT_DIR = BUILD_DIR / "screenshots"
PDF_PATH = BUILD_DIR / "pdf" / "book.pdf"


def reading_order() -> list[str]:
    """The built book's pages as a reader meets them: the root page (where index.html redirects), then the
    chapters of book/_toc.yml."""
    import yaml

    toc = yaml.safe_load((BOOK_DIR / "_toc.yml").read_text())
    return [f"{toc['root']}.html"] + [f"{entry['file']}.html" for entry in toc.get("chapters", [])]


def handout_title_lines() -> list[str]:
    """The handout's title page: the book's title, what it is, and which build (profile, date, commit) it
    prints, read from the staged notebooks the HTML was built from."""
    import json
    import time

    from gqa.runs import git_commit

    staged = sorted((BUILD_DIR / "src" / "notebooks").glob("*.ipynb"))
    used = {json.loads(p.read_text()).get("metadata", {}).get("papermill", {}).get("parameters", {}).get("profile")
            for p in staged}
    profile = ", ".join(sorted(str(u) for u in used if u)) or "unknown"
    return ["Cost-optimal grouped-query attention for long-context modeling",
            "A reproducible companion to Chen et al., EMNLP 2025: the book as a handout",
            f"Built under the {profile} profile; printed {time.strftime('%Y-%m-%d')} from commit {git_commit()[:12]}",
            "Code and the exercises' solutions are left out; check an answer with gqa exercise check ID ANSWER."]


def print_built_book(out: Path = PDF_PATH) -> dict:
    """The whole built book as one handout PDF, printed by headless Chromium: title page, contents with
    page numbers, numbered pages, chapter titles in the outline (`gqa_book.handout`)."""
    from gqa_book.browser import print_book

    return print_book(BUILD_DIR / "html", reading_order(), out, handout_title_lines())


def check_built_book(profile_name: str) -> tuple[LinkReport, list[PageReport]]:
    """Check the built book like a reader: internal links offline, then every page in headless Chromium
    (images loaded, a glued value visible, no console errors, nothing clipped and no sideways scroll at 1280
    and at 390 px), with screenshots in book/_build/screenshots/.
    Returns (LinkReport, [PageReport]); prints a summary."""
    from gqa_book import browser, linkcheck

    html_dir = BUILD_DIR / "html"
    links = linkcheck.check_links(html_dir)
    print(f"links: {links.links} in {links.pages} pages, {len(links.broken)} broken, "
          f"{len(links.external)} external hyperlinks (not fetched), "
          f"{len(links.external_resources)} external resources")
    for problem in links.broken:
        print(f"  broken: {problem}")
    for address in sorted(links.external_resources):
        print(f"  loads from outside: {address}")
    expected = {}
    for page, want in CHECKED_PAGES.items():
        if isinstance(want, str):
            expected[page] = want
            continue
        stem, name = want
        values = glued_values(BUILD_DIR / "src" / "notebooks" / f"{stem}.ipynb")  # what the HTML shows
        expected[page] = values[name].strip("'\"")
    pages = browser.check_book(html_dir, expected, SCREENSHOT_DIR)
    for report in pages:
        page = next(p for p in expected if report.url.endswith("/" + p))
        status = "ok" if report.ok else "FAILED"
        print(f"{status}: {page} at {report.width} px: {report.images} images, {len(report.broken_images)} not "
              f"loaded, {len(report.uncaptioned_images)} without a numbered caption or alt text, "
              f"text {expected[page]!r} {'found' if report.text_found else 'MISSING'}, "
              f"{len(report.console_errors)} console errors, {len(report.clipped)} clipped, "
              f"{'scrolls sideways' if report.sideways else 'no sideways scroll'}, {report.screens:.1f} screens"
              f"{f' with {report.in_page_toc} in-page contents links' if report.in_page_toc else ''}"
              f"{' (too long without in-page contents)' if report.long_without_toc else ''}; "
              f"screenshot {Path(report.screenshot).relative_to(ROOT)}")
        for error in report.console_errors:
            print(f"  console: {error}")
        for clip in report.clipped:
            print(f"  clipped: {clip}")
        for figure in report.shrunk:
            print(f"  shrunk: {figure}")
    return links, pages
