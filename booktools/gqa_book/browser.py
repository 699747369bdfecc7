"""Open built book pages in a real headless Chromium, the way a reader would, and check them.

A local HTTP server serves the built HTML; Chromium is driven over the DevTools protocol (one
websocket, `websocket-client`). For each page we record console errors, uncaught exceptions and failed
loads (the browser's log), every `<img>` that did not load (`naturalWidth == 0`), whether an expected
text is on the page, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install Debian's chromium package (`make test` does: apt-get install -y chromium)"


def find_chromium() -> str:
    """Path of a Chromium binary, or FileNotFoundError saying how to install one."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}): {INSTALL_HINT}")


@dataclass
class PageReport:
    url: str
    title: str = ""
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    uncaptioned_images: list[str] = field(default_factory=list)  # no numbered caption or no real alt text
    console_errors: list[str] = field(default_factory=list)
    text_found: bool | None = None
    screenshot: str | None = None
    width: int = 1280  # CSS px of the viewport the page was laid out in
    clipped: list[str] = field(default_factory=list)  # content cut off by overflow: hidden, out of reach
    sideways: bool = False  # the whole page scrolls sideways
    screens: float = 0.0  # the page's height in screens of the viewport (900 px high)
    in_page_toc: int = 0  # visible links of the in-page table of contents (the theme's right-hand sidebar)
    shrunk: list[str] = field(default_factory=list)  # on a phone: wide figures shown below half their size
    stacked_panels: int = 0  # panels of side-by-side figures shown one under another (on a phone)

    @property
    def long_without_toc(self) -> bool:
        """Longer than MAX_SCREENS on a laptop with no in-page table of contents to find one's way."""
        return self.width >= DESKTOP_WIDTH and self.screens > MAX_SCREENS and self.in_page_toc < 2

    @property
    def ok(self) -> bool:
        return (not self.broken_images and not self.uncaptioned_images and not self.console_errors
                and self.text_found is not False and not self.clipped and not self.sideways
                and not self.long_without_toc and not self.shrunk)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a browser closing a connection early
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve a folder over HTTP on a free localhost port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    with _Server(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


class _DevTools:
    """The smallest DevTools-protocol client we need: send a command, wait for its answer, keep events."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} before the deadline")
            self.events.append(json.loads(self.ws.recv()))

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def chromium(timeout: float = 60.0) -> Iterator[_DevTools]:
    """A headless Chromium with no network access beyond localhost, and a DevTools connection to it."""
    binary = find_chromium()
    profile = Path(tempfile.mkdtemp(prefix="gqa-chromium-"))
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost", "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if proc.poll() is not None:
                raise RuntimeError(f"Chromium exited with status {proc.returncode} before opening DevTools")
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        client = _DevTools(f"ws://127.0.0.1:{port}{path}", timeout)
        try:
            yield client
        finally:
            client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


_PAGE_FACTS = r"""(() => {
  const imgs = Array.from(document.images);
  return JSON.stringify({
    title: document.title,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    // a figure a reader can use: alt text that describes it (not a file name), inside a numbered caption
    uncaptioned: imgs.filter(i => i.closest('article') && !i.closest('.sidebar-primary-items__start'))
      .filter(i => { const alt = (i.getAttribute('alt') || '').trim();
                     const cap = i.closest('figure') && i.closest('figure').querySelector('figcaption');
                     return alt.length < 15 || /\.(png|svg|jpe?g)$/i.test(alt) || !cap
                            || !/[Ff]ig\. \d+/.test(cap.innerText); })
      .map(i => i.getAttribute('src').slice(0, 60)),
    text: document.body ? document.body.innerText : '',
    // content a reader cannot reach: wider than its box, which hides the overflow instead of scrolling it
    clipped: Array.from(document.querySelectorAll('article *')).filter(el => {
        const cs = getComputedStyle(el);
        return (cs.overflowX === 'hidden' || cs.overflowX === 'clip') && el.scrollWidth > el.clientWidth + 2
          && el.clientWidth > 0; })
      .map(el => `${el.tagName.toLowerCase()}.${String(el.className).split(' ')[0]} `
                 + `${el.scrollWidth}>${el.clientWidth}px: ` + (el.innerText || '').trim().slice(0, 40)).slice(0, 20),
    sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth + 1,
    screens: document.documentElement.scrollHeight / window.innerHeight,
    stacked: Array.from(document.querySelectorAll('.gqa-stacked img'))
      .filter(i => i.getClientRects().length > 0).length,
    // a wide figure shrunk below half its size to fit a narrow screen: unreadable (stack or scroll it)
    // (its size in CSS pixels: the width it declares, a high-density image's half its pixels)
    shrunk: imgs.map(i => [i, +(i.getAttribute('width')) || i.naturalWidth])
      .filter(([i, w]) => i.closest('article') && i.getClientRects().length > 0 && w > 700
                          && i.clientWidth < 0.5 * w && window.innerWidth < 600)
      .map(([i, w]) => `${w}px shown at ${i.clientWidth}px: ${(i.getAttribute('alt') || '').slice(0, 40)}`),
    toc: Array.from(document.querySelectorAll('.bd-sidebar-secondary nav a'))
      .filter(a => a.getClientRects().length > 0).length
  });
})()"""

_TYPESET = """(async () => {
  const startup = window.MathJax && window.MathJax.startup;
  const typeset = Promise.all([startup && startup.promise, document.fonts.ready]);
  const late = new Promise((_, fail) => setTimeout(() => fail(new Error('MathJax or fonts not ready after %d s')), %d));
  await Promise.race([typeset, late]);
  return true;
})()"""
TYPESET_TIMEOUT = 30  # seconds MathJax and the fonts may take after the load event


def _typeset(browser: _DevTools, session: str) -> str | None:
    """Wait, after the load event, until MathJax has typeset the page (where it has MathJax) and its fonts
    have loaded: widths and heights measured before would be those of the raw TeX. Returns what went wrong
    (MathJax failed, or took longer than TYPESET_TIMEOUT), None when it is ready."""
    reply = browser.call("Runtime.evaluate", session, awaitPromise=True, returnByValue=True,
                         expression=_TYPESET % (TYPESET_TIMEOUT, TYPESET_TIMEOUT * 1000))
    if "exceptionDetails" in reply:
        details = reply["exceptionDetails"]
        return details.get("exception", {}).get("description") or details.get("text", "typesetting failed")
    return None


_ARRIVED = """document.querySelector('meta[http-equiv="refresh" i]') ? 'redirecting' : document.readyState"""


def _arrive(browser: _DevTools, session: str, deadline: float) -> None:
    """Wait until the page a URL leads to has loaded: a meta refresh (the book's root index.html) is
    followed to the page it names, which is the one a reader sees."""
    while True:
        try:
            state = browser.call("Runtime.evaluate", session, expression=_ARRIVED, returnByValue=True)
        except RuntimeError:  # the document went away mid-navigation
            state = {}
        if state.get("result", {}).get("value") == "complete":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page did not finish loading: {state}")
        time.sleep(0.1)


PHONE_WIDTH, DESKTOP_WIDTH = 390, 1280  # CSS px: a phone held upright, and a laptop
MAX_SCREENS = 10  # a page longer than this (at 1280 x 900) needs an in-page table of contents


def check_page(browser: _DevTools, url: str, expect_text: str | None = None, screenshot: Path | None = None,
               width: int = 1280, timeout: float = 60.0) -> PageReport:
    """Load one page in a fresh tab; report what a reader would notice, and save a screenshot."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        mobile = width < 600
        browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900, deviceScaleFactor=1,
                     mobile=mobile)
        browser.events.clear()
        browser.call("Page.navigate", session, url=url)
        deadline = time.monotonic() + timeout
        browser.wait_for("Page.loadEventFired", deadline)
        _arrive(browser, session, deadline)
        typeset_error = _typeset(browser, session)
        time.sleep(0.5)  # late scripts: their errors land in the log too
        browser.call("Runtime.evaluate", session, expression="1")  # flush pending events
        facts = json.loads(browser.call("Runtime.evaluate", session, expression=_PAGE_FACTS,
                                        returnByValue=True)["result"]["value"])
        report = PageReport(url, facts["title"], facts["images"], facts["broken"], facts["uncaptioned"], width=width,
                            clipped=facts["clipped"], sideways=facts["sideways"], screens=facts["screens"],
                            in_page_toc=facts["toc"], shrunk=facts["shrunk"],
                            stacked_panels=facts["stacked"])
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                      for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                report.console_errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                report.console_errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
        if typeset_error:
            report.console_errors.append(typeset_error)
        if expect_text is not None:
            report.text_found = expect_text in facts["text"]
        if screenshot is not None:
            height = browser.call("Runtime.evaluate", session, returnByValue=True,
                                  expression="document.documentElement.scrollHeight")["result"]["value"]
            browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=min(int(height), 16000),
                         deviceScaleFactor=1, mobile=mobile)
            data = browser.call("Page.captureScreenshot", session, format="png")["data"]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(data))
            report.screenshot = str(screenshot)
        return report
    finally:
        browser.call("Target.closeTarget", targetId=target)


def check_book(html_dir: Path, pages: dict[str, str | None], screenshot_dir: Path | None = None,
               widths: tuple[int, ...] = (DESKTOP_WIDTH, PHONE_WIDTH)) -> list[PageReport]:
    """Serve a built book and check each page (path relative to html_dir -> text expected on it) at each
    width: on a laptop and on a phone, where nothing may be cut off and no page may scroll sideways."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"no built book at {html_dir}: run `gqa book` first")
    reports = []
    with serve(html_dir) as base, chromium() as browser:
        for page, text in pages.items():
            for width in widths:
                suffix = "" if width == DESKTOP_WIDTH else f"-{width}px"
                shot = screenshot_dir / (Path(page).stem + suffix + ".png") if screenshot_dir else None
                reports.append(check_page(browser, f"{base}/{page}", text, shot, width=width))
    return reports


_IMAGES_LOADED = """(() => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  return imgs.every(i => i.complete);
})()"""


def print_page(browser: _DevTools, url: str, timeout: float = 60.0, **options) -> bytes:
    """One page as PDF (A4, backgrounds on), after every image has loaded and MathJax has typeset. `options`
    go to Chromium's Page.printToPDF as they are (footerTemplate, generateDocumentOutline, ...)."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        browser.call("Page.enable", session)
        browser.events.clear()
        browser.call("Page.navigate", session, url=url)
        deadline = time.monotonic() + timeout
        browser.wait_for("Page.loadEventFired", deadline)
        while not browser.call("Runtime.evaluate", session, expression=_IMAGES_LOADED,
                               returnByValue=True)["result"]["value"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: images still loading after {timeout:.0f}s")
            time.sleep(0.2)
        _typeset(browser, session)
        settings = dict(printBackground=True, paperWidth=8.27, paperHeight=11.69,
                        marginTop=0.5, marginBottom=0.5, marginLeft=0.5, marginRight=0.5)
        data = browser.call("Page.printToPDF", session, **{**settings, **options})["data"]
        return base64.b64decode(data)
    finally:
        browser.call("Target.closeTarget", targetId=target)


_PRINT_FACTS = r"""(() => {
  const article = document.querySelector('article');
  const right = article.getBoundingClientRect().right;
  const visible = el => el.getClientRects().length > 0;
  const label = el => `${el.tagName.toLowerCase()}.${String(el.className).split(' ')[0]}: `
                      + (el.innerText || el.getAttribute('src') || '').trim().slice(0, 40);
  const all = Array.from(article.querySelectorAll('*')).filter(visible);
  return JSON.stringify({
    // a box that would print a scrollbar or cut its content off
    scrolled: all.filter(el => { const cs = getComputedStyle(el);
        return cs.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 2 && el.clientWidth > 0; })
      .map(label).slice(0, 20),
    // a table, code block, image or equation wider than the printed column
    wider: all.filter(el => /^(TABLE|PRE|IMG|MJX-CONTAINER)$/.test(el.tagName)
                            && el.getBoundingClientRect().right > right + 2).map(label).slice(0, 20),
    // what a reader of paper cannot use: code toggles, buttons
    toggles: all.filter(el => el.tagName === 'SUMMARY' && /code cell|Show|Hide/.test(el.innerText)
                              || el.tagName === 'BUTTON').map(label).slice(0, 20)
  });
})()"""


def print_problems(browser: _DevTools, url: str, width: int = 698, timeout: float = 120.0) -> dict[str, list[str]]:
    """What would print badly on one page laid out as print media in an A4 column (698 CSS px): boxes that
    scroll or clip, tables, code, images or equations wider than the column, and code toggles or buttons.
    Empty lists when it prints well."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        browser.call("Page.enable", session)
        browser.call("Emulation.setEmulatedMedia", session, media="print")
        browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=1000, deviceScaleFactor=1,
                     mobile=False)
        browser.events.clear()
        browser.call("Page.navigate", session, url=url)
        browser.wait_for("Page.loadEventFired", time.monotonic() + timeout)
        _typeset(browser, session)
        return json.loads(browser.call("Runtime.evaluate", session, expression=_PRINT_FACTS,
                                       returnByValue=True)["result"]["value"])
    finally:
        browser.call("Target.closeTarget", targetId=target)


def _outline(pdf: bytes) -> list[tuple[int, list[int]]]:
    """Chromium's document outline of a PDF: per top-level entry (an h1), its sheet (1-based) and those of
    its children (the h2s)."""
    from io import BytesIO

    from pypdf import PdfReader

    reader = PdfReader(BytesIO(pdf))
    out: list[tuple[int, list[int]]] = []
    for item in reader.outline:
        if isinstance(item, list):
            if out:
                out[-1][1].extend(reader.get_destination_page_number(c) + 1 for c in item if not isinstance(c, list))
        else:
            out.append((reader.get_destination_page_number(item) + 1, []))
    return out


def print_book(html_dir: Path, pages: list[str], out: Path, title_lines: list[str]) -> dict:
    """Print a built book (its pages in reading order) as one handout PDF, written atomically: a title page,
    a table of contents with page numbers, page numbers in every footer, an outline of chapters and their
    sections. Printed twice: the first printing's outline says where each chapter starts, for the table of
    contents. Returns the page count, each chapter's first sheet, each sheet's fill and the path."""
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    from gqa_book import handout

    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"no built book at {html_dir}: run `gqa book` first")
    target = html_dir / handout.HANDOUT_NAME
    options = dict(displayHeaderFooter=True, headerTemplate="<span></span>", footerTemplate=handout.FOOTER,
                   marginBottom=0.6, generateDocumentOutline=True)
    numbers: dict[str, int] | None = None
    try:
        with serve(html_dir) as base, chromium() as browser:
            for _ in range(3):  # the numbers settle after one reprint; a third printing is a safeguard
                text, chapters = handout.document(html_dir, pages, title_lines, numbers)
                target.write_text(text, encoding="utf-8")
                pdf = print_page(browser, f"{base}/{handout.HANDOUT_NAME}", timeout=180.0, **options)
                outline = _outline(pdf)
                if len(outline) != len(chapters):
                    raise RuntimeError(f"the printed handout's outline has {len(outline)} chapters, the book "
                                       f"{len(chapters)}")
                found = {c.page: sheet for c, (sheet, _) in zip(chapters, outline)}
                if found == numbers:
                    break
                numbers = found
            else:
                raise RuntimeError("the handout's page numbers did not settle")
    finally:
        target.unlink(missing_ok=True)
    writer = PdfWriter()
    writer.append(PdfReader(BytesIO(pdf)), import_outline=False)  # Chromium's titles lose spaces at line ends
    writer.add_metadata({"/Title": title_lines[0]})
    for c, (sheet, children) in zip(chapters, outline):
        parent = writer.add_outline_item(title=c.title, page_number=sheet - 1)
        if len(children) == len(c.sections):
            for title, child in zip(c.sections, children):
                writer.add_outline_item(title=title, page_number=child - 1, parent=parent)
    writer.page_mode = "/UseOutlines"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("wb") as f:
        writer.write(f)
    tmp.replace(out)
    return {"pages": len(writer.pages), "by_page": numbers, "fill": handout.sheet_fill(pdf), "path": str(out)}
