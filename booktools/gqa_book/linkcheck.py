"""Check the internal links of a built HTML book offline: every relative href/src resolves to a file,
and every #fragment to an element id on the target page; a reference by number ("Book fig. 13") carries
the number of the caption it points to (an incremental build can leave a page with stale numbers).
External addresses are listed, not fetched; those a page would load (scripts, styles, images) are kept
apart from plain hyperlinks."""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

SKIP_SCHEMES = ("mailto", "data", "javascript", "tel")


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (kind, address): kind "resource" (loaded) or "link"
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                kind = "resource" if key == "src" or tag == "link" else "link"
                self.links.append((kind, attrs[key]))


@dataclass
class LinkReport:
    pages: int = 0
    links: int = 0
    broken: list[str] = field(default_factory=list)  # "page: link (why)"
    external: set[str] = field(default_factory=set)  # hyperlinks out of the book (fine for a reader)
    external_resources: set[str] = field(default_factory=set)  # things a page would load from outside


def check_links(html_dir: Path | str) -> LinkReport:
    html_dir = Path(html_dir)
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.relative_to(html_dir).parts)
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}: build the book first")
    parsed: dict[Path, _Collector] = {}
    texts: dict[Path, str] = {}
    for page in pages:
        collector = _Collector()
        texts[page.resolve()] = page.read_text(errors="replace")
        collector.feed(texts[page.resolve()])
        parsed[page.resolve()] = collector
    report = LinkReport(pages=len(pages))
    for page, collector in parsed.items():
        shown = page.relative_to(html_dir.resolve())
        for kind, link in collector.links:
            parts = urlsplit(link)
            if parts.scheme in SKIP_SCHEMES:
                continue
            report.links += 1
            if parts.scheme or parts.netloc:
                (report.external_resources if kind == "resource" else report.external).add(link)
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                report.broken.append(f"{shown}: {link} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = parsed.get(target).ids if target in parsed else set()
                if fragment not in ids:
                    report.broken.append(f"{shown}: {link} (no element with id {fragment!r})")
    report.broken += numbered_reference_problems(html_dir.resolve(), texts)
    return report


_NUMREF = re.compile(r'<a class="reference internal" href="([^"#]*)#([^"]+)"><span class="std std-numref">'
                     r'([^<]*?)(\d+)</span></a>')


def numbered_reference_problems(html_dir: Path, texts: dict[Path, str]) -> list[str]:
    """Each "Book fig. N" link whose target's caption is not numbered N: "page: text -> target (caption M)".
    `texts` are the built pages' HTML by resolved path (read once, by `check_links`)."""
    problems, captions = [], {}
    for page, text in texts.items():
        for href, anchor, prefix, number in _NUMREF.findall(text):
            target = (page.parent / unquote(href)).resolve() if href else page
            if target not in captions:
                captions[target] = dict(re.findall(r'<figure[^>]*id="([^"]+)"[^>]*>.*?<span class="caption-number">'
                                                   r'[^<]*?(\d+)\s*</span>', texts.get(target, ""), re.S))
            shown = captions[target].get(anchor)
            if shown is not None and shown != number:
                problems.append(f"{page.relative_to(html_dir)}: {prefix}{number} -> {href}#{anchor} "
                                f"(its caption says {prefix}{shown})")
    return problems
