"""The book as a printed handout: one HTML document holding every page in reading order, behind a title
page and a table of contents, that headless Chromium prints to one PDF (`gqa book --pdf`).

Printing one document rather than page after page gives what a handout needs: page numbers that run
through the whole book (Chromium's footer), an outline of chapters and their sections (where Chromium's
outline of the headings says they start, with the titles taken from the HTML), and a table of contents
whose page numbers come from a first printing. How it
looks on paper is the book's print stylesheet (book/_css/gqa.css, `@media print`): no navigation, no
code toggles or solutions, no scroll boxes, tables wrapped to the page, chapters running on (each under
a rule) so that no sheet is left nearly empty (`sheet_fill`).
"""

from __future__ import annotations

import html
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

HANDOUT_NAME = "_handout.html"  # written at the root of the built HTML, printed, then removed
_ARTICLE = re.compile(r'<article class="bd-article"[^>]*>(.*)</article>', re.S)
_HEAD = re.compile(r"<head>(.*?)</head>", re.S)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)
_H2 = re.compile(r"<h2[^>]*>(.*?)</h2>", re.S)
_URL_ATTR = re.compile(r'\b(src|href)="([^"#:]+?)(#[^"]*)?"')


@dataclass(frozen=True)
class Chapter:
    page: str  # path of the built page, relative to the HTML root
    title: str  # its h1, as text
    sections: tuple[str, ...]  # its h2s, as text
    body: str  # its article's HTML, URLs rebased to the HTML root


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment: tags dropped (the heading's ¶ link too), entities decoded."""
    fragment = re.sub(r'<a class="headerlink".*?</a>', "", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def rebase(fragment: str, page: str) -> str:
    """Relative src/href of a page at `page` rewritten relative to the HTML root (where the handout lies);
    links within the page become anchors of the handout."""
    folder = posixpath.dirname(page)

    def one(match: re.Match) -> str:
        attr, url, anchor = match.group(1), match.group(2), match.group(3) or ""
        if url.startswith(("/", "data")):
            return match.group(0)
        return f'{attr}="{posixpath.normpath(posixpath.join(folder, url))}{anchor}"'

    return _URL_ATTR.sub(one, fragment)


def chapter(html_dir: Path, page: str) -> Chapter:
    """One built page's article (ValueError when the page has no article or no h1)."""
    text = (Path(html_dir) / page).read_text(encoding="utf-8")
    article = _ARTICLE.search(text)
    if article is None:
        raise ValueError(f"{page}: no <article class=\"bd-article\"> (not a page of the built book)")
    heading = _H1.search(article.group(1))
    if heading is None:
        raise ValueError(f"{page}: no h1 title")
    sections = tuple(text_of(h) for h in _H2.findall(article.group(1)))
    return Chapter(page, text_of(heading.group(1)), sections, rebase(article.group(1), page))


def document(html_dir: Path, pages: list[str], title_lines: list[str],
             page_numbers: dict[str, int] | None = None) -> tuple[str, list[Chapter]]:
    """The handout's HTML (head taken from the first root-level page, so styles and MathJax load as in the
    book) and its chapters. `page_numbers` ({page: first sheet}) fills the table of contents; without it
    the numbers are left blank, as in the first printing."""
    html_dir = Path(html_dir)
    chapters = [chapter(html_dir, p) for p in pages]
    template = next(p for p in pages if "/" not in p)
    head = _HEAD.search((html_dir / template).read_text(encoding="utf-8")).group(1)
    head = re.sub(r"<title>.*?</title>", f"<title>{html.escape(chapters[0].title)} (handout)</title>", head, flags=re.S)
    toc = "\n".join(
        f'<li><span class="handout-toc-title">{html.escape(c.title)}</span>'
        f'<span class="handout-toc-page">{(page_numbers or {}).get(c.page, "")}</span></li>' for c in chapters)
    front = (f'<section class="handout-title-page"><p class="handout-title">{html.escape(title_lines[0])}</p>'
             + "".join(f'<p class="handout-subtitle">{html.escape(line)}</p>' for line in title_lines[1:])
             + '</section>\n<section class="handout-toc"><p class="handout-toc-heading">Contents</p>'
             f'<ol>{toc}</ol></section>\n')
    body = "\n".join(f'<section class="handout-chapter" id="handout-{i}">{c.body}</section>'
                     for i, c in enumerate(chapters))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head>\n<body class="gqa-handout">\n'
            f'<main class="bd-main"><div class="bd-content"><article class="bd-article">\n{front}{body}\n'
            f'</article></div></main>\n</body></html>\n')
    return page, chapters


FOOTER = ('<div style="font-size:8px; width:100%; text-align:center; color:#555;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


def sheet_fill(pdf) -> list[float]:
    """How far down each sheet its content reaches, as a share of the sheet's height (0: blank, about 0.94:
    full to the bottom margin): the lowest line of text or image, the footer's page number not counted."""
    from io import BytesIO

    from pypdf import PdfReader

    reader = PdfReader(BytesIO(pdf) if isinstance(pdf, bytes) else pdf)
    out = []
    for page in reader.pages:
        height = float(page.mediabox.height)
        lowest = [height]
        footer = 0.6 * 72  # the bottom margin, in points, where the page number is printed

        def text(chars, cm, tm, font, size):
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            if chars.strip() and y > footer:
                lowest.append(y)

        def operator(op, args, cm, tm):
            if op == b"Do":  # an image, drawn into the box the current matrix maps the unit square to
                lowest.append(min(cm[5], cm[5] + cm[3]))

        page.extract_text(visitor_text=text, visitor_operand_before=operator)
        out.append((height - min(lowest)) / height)
    return out
