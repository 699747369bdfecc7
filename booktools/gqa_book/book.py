"""`gqa book`: execute the notebooks under a profile, then build the Jupyter Book offline.

Layout of the build folder (all under book/_build/, never committed):
  executed/<stem>/<key>.ipynb       an executed notebook, named by the hash of its inputs, with <key>.json
                                    saying which profile executed it, when, and how long it took
  src/                              staged book sources: book/*.md, configs, the executed notebooks, and
                                    MathJax in src/_offline_static (served as _static/mathjax)
  html/                             the rendered book

The cache is addressed by content: a notebook runs again only when its inputs change
(`gqa_book.notebook_inputs`), and two profiles that give a notebook the same inputs share one execution. Before
anything runs the profile is validated (`gqa.profiles`) and every notebook's data is looked up; a gap stops
the build with one line per gap naming the command that fills it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from gqa import profiles
from gqa.paths import BOOK_DIR, BUILD_DIR, NOTEBOOK_DIR, ROOT, absolute_folder_variables
from gqa_book import launch, notebook_params
from gqa_book.notebook import with_used_values
from gqa_book.notebook_inputs import environment_digest, notebook_inputs

# Static files served by the book. Not `_static`: Jupyter Book 1 adds every .js under a `_static` folder
# to every page, which would load all of MathJax's extensions eagerly.
OFFLINE_STATIC = "_offline_static"
MATHJAX_ENTRY = "tex-chtml.js"  # book/_config.yml points mathjax_path at it
EXECUTED_DIR = BUILD_DIR / "executed"
KEEP_PER_NOTEBOOK = 8  # executions kept per notebook in the cache (the newest)


class MissingData(RuntimeError):
    """Data a notebook reads is not there; one line per gap, each naming the command that makes it."""


def _require_checkout() -> None:
    if not (BOOK_DIR / "_toc.yml").exists():
        raise FileNotFoundError(f"no book sources at {BOOK_DIR}: run `gqa book` from a repo checkout")


@dataclass
class Execution:
    stem: str
    output: Path
    cached: bool
    seconds: float


def execute_notebook(notebook: Path, output: Path, params: dict) -> None:
    """Run one notebook with papermill, writing `output` atomically (never a partial file)."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial.ipynb")
    try:
        with launch.outside_hosted_session(), launch.environment(absolute_folder_variables()):  # runs in notebooks/
            papermill.execute_notebook(str(notebook), str(partial), parameters=params,
                                       kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK_DIR))
    except Exception as e:
        failed = output.with_suffix(".failed.ipynb")
        if partial.exists():
            partial.replace(failed)
        first_line = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"notebook {notebook.name} failed: {first_line} (see {failed})") from e
    show_used_parameters(partial, params)
    partial.replace(output)


def show_used_parameters(path: Path, params: dict) -> None:
    """Make the `parameters` cell show the values the run used (papermill's injected cell is then
    removed from the page): a reader sees what was run, not the notebook's defaults."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags:
            lines = with_used_values("".join(cell["source"]), params).splitlines()
            cell["source"] = [line + "\n" for line in lines[:-1]] + lines[-1:]
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


def _prune(folder: Path, keep: int = KEEP_PER_NOTEBOOK) -> None:
    done = sorted(folder.glob("*.ipynb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in done if not p.name.endswith((".partial.ipynb", ".failed.ipynb"))][keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


@dataclass
class Plan:
    """What one build will do: per notebook its parameters, its cache file and whether that exists."""

    profile: profiles.Profile
    items: list[tuple[Path, dict, Path]]  # (notebook, parameters, cached output path)
    gaps: list[str]


def plan(profile_name: str, *, force: bool = False) -> Plan:
    """Validate the profile and find every notebook's cached output and missing data; runs nothing."""
    profile = notebook_params.load(profile_name)
    items, gaps, environment = [], [], environment_digest()
    for nb in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        params = profile.notebook_parameters(nb.stem)
        if force and "retrain" in notebook_params.notebook_defaults(nb.stem):
            params["retrain"] = True
        inputs = notebook_inputs(nb, params, profile, environment)
        items.append((nb, params, EXECUTED_DIR / nb.stem / f"{inputs.key}.ipynb"))
        gaps += [f"{nb.stem}: {gap}" for gap in inputs.gaps]
    return Plan(profile, items, gaps)


def _origin(output: Path) -> dict:
    """What the key file beside a cached execution says (the profile that made it); {} when it is missing
    or damaged (it only annotates the log line, so damage costs nothing but that annotation)."""
    try:
        origin = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return origin if isinstance(origin, dict) else {}


def _readable_notebook(path: Path) -> bool:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(nb, dict) and isinstance(nb.get("cells"), list)


def execute_all(profile_name: str, *, force: bool = False, only: list[str] | None = None,
                log=print) -> list[Execution]:
    """Execute every notebook (or only some) under a profile, reusing unchanged results."""
    _require_checkout()
    if only:
        unknown = set(only) - set(notebook_params.notebook_stems())
        if unknown:
            raise ValueError(f"no such notebook: {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(notebook_params.notebook_stems())}")
    build = plan(profile_name, force=force)
    if build.gaps:
        raise MissingData("\n".join(["data the notebooks read is missing (nothing was executed):"] + build.gaps))
    results, n = [], len(build.items)
    for i, (nb, params, output) in enumerate(build.items, 1):
        selected = not only or nb.stem in only
        start = time.perf_counter()
        if output.exists() and not _readable_notebook(output):
            output.replace(output.with_suffix(".bad"))  # a damaged cached execution is a miss, kept aside
        if output.exists() and not (force and selected):
            by = _origin(output).get("profile")
            elsewhere = by and by != build.profile.name
            status = "cached (inputs unchanged" + (f"; executed under profile {by!r})" if elsewhere else ")")
            cached = True
        elif not selected:
            raise RuntimeError(f"{nb.stem} has no execution for these inputs; run without --only")
        else:
            log(f"[{i}/{n}] {nb.stem}: executing ...", flush=True)
            execute_notebook(nb, output, params)
            output.with_suffix(".json").write_text(json.dumps(
                {"profile": build.profile.name, "executed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "seconds": round(time.perf_counter() - start, 1), "parameters": params}, indent=1, default=str))
            _prune(output.parent)
            status, cached = "executed (cache miss)", False
        seconds = time.perf_counter() - start
        log(f"[{i}/{n}] {nb.stem}: {status} in {seconds:.1f}s", flush=True)
        results.append(Execution(nb.stem, output, cached, seconds))
    return results


def _sync(src: Path, dst: Path) -> None:
    """Copy only if the bytes differ, so Sphinx sees unchanged files as unchanged; a copy gets a new
    modification time (not the source's), so Sphinx, which goes by it, re-reads the page. A cached execution
    is older than the last HTML build, so keeping its time left the other profile's page in place."""
    if dst.exists() and dst.read_bytes() == src.read_bytes():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


# An exercise's solution in a chapter's Markdown: a dropdown admonition opening with the glued answer
SOLUTION = re.compile(r"```\{admonition\} Solution\n:class: dropdown\n\n\{glue:text\}`ex_(\d+)_(\d+)`.*?\n```\n?", re.S)
ANSWER_GLUE = re.compile(r"ex_\d+_\d+")


WIDE_FIGURE_PX = 720  # a single-column figure wider than this scrolls in its own box on a phone


def _png_size(encoded: str) -> tuple[int, int]:
    """(width, height) in pixels of a base64-encoded PNG, read from its header."""
    import base64

    head = base64.b64decode(encoded[:44])  # 33 bytes: the signature and the IHDR chunk
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def responsive_figures(nb: dict) -> int:
    """Give each captioned figure an HTML version (in place) that a phone can read: a figure whose panels
    stand side by side (its output carries `gqa_panels`, from `gqa_book.plots.show_responsive`) shows them
    stacked below 600 px; a wide single-column figure scrolls in its own box there. Desktop and print show
    the figure as drawn. The cell's alt text goes on every image. Returns how many figures changed."""
    import html as html_lib

    changed = 0
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("mystnb") or {}
        if cell.get("cell_type") != "code" or not meta.get("figure"):
            continue
        alt = (meta.get("image") or {}).get("alt") or meta["figure"].get("caption", "")
        alt = html_lib.escape(str(alt), quote=True)
        for out in cell.get("outputs", []):
            data, extra = out.get("data", {}), out.get("metadata", {})
            if "image/png" not in data or "gqa_size" not in extra:
                continue
            wide = "".join(data["image/png"]).strip()
            width, height = extra["gqa_size"]
            panels = extra.get("gqa_panels") or []
            if panels:
                density = float(extra.get("gqa_panel_density", 1))  # pixels per CSS pixel of the panel images
                stacked = "".join(f'<img src="data:image/png;base64,{p}" alt="{alt} (panel {i} of {len(panels)})"'
                                  + "".join(f' {k}="{round(v / density)}"' for k, v in zip(("width", "height"),
                                                                                          _png_size(p)))
                                  + ">" for i, p in enumerate(panels, 1))
                body = (f'<div class="gqa-figure"><img class="gqa-wide" src="data:image/png;base64,{wide}" '
                        f'alt="{alt}" width="{width}" height="{height}"><div class="gqa-stacked">{stacked}</div></div>')
            elif width > WIDE_FIGURE_PX:  # on a phone: at least 640 px and 80% of its size, scrolled
                phone = max(640, round(0.8 * width))
                body = (f'<div class="gqa-scroll" style="--gqa-phone-width: {phone}px"><img '
                        f'src="data:image/png;base64,{wide}" alt="{alt}" width="{width}" height="{height}"></div>')
            else:
                continue
            data["text/html"] = body
            changed += 1
    return changed


def without_solutions(nb: dict) -> int:
    """Make an executed chapter (in place) a student's copy: each solution replaced by a line saying how to
    check an answer, and the glued answers dropped from the outputs (so the page, the notebook offered for
    download and the PDF hold none). Returns how many solutions were removed."""
    removed = 0
    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown":
            text, n = SOLUTION.subn(lambda m: f"*Check your answer with `gqa exercise check {m.group(1)}.{m.group(2)} "
                                              f"YOUR_ANSWER`; this edition leaves the solution out.*\n",
                                    "".join(cell["source"]))
            if n:
                removed += n
                lines = text.split("\n")
                cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        elif cell.get("cell_type") == "code":
            cell["outputs"] = [out for out in cell.get("outputs", []) if not ANSWER_GLUE.fullmatch(
                out.get("metadata", {}).get("scrapbook", {}).get("name", ""))]
    return removed


def _sync_text(text: str, dst: Path) -> bool:
    """Write `text` to `dst` only if it differs (see `_sync`); True when it wrote."""
    if dst.exists() and dst.read_text(encoding="utf-8") == text:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="utf-8")
    return True


# A favicon, so browsers do not request a missing /favicon.ico.
FAVICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
<rect width="16" height="16" rx="3" fill="#4c72b0"/><rect x="3" y="3" width="4" height="10" fill="#fff"/>
<rect x="9" y="9" width="4" height="4" fill="#dd8452"/></svg>
"""


def _mathjax_dir() -> Path:
    """MathJax 3 (with its fonts) from the `sphinx-mathjax-offline` wheel, which installs it as data."""
    from importlib import metadata

    try:
        folder = Path(metadata.distribution("sphinx-mathjax-offline").locate_file(
            "sphinx-mathjax-offline/static/mathjax"))
    except metadata.PackageNotFoundError:
        raise RuntimeError("MathJax is missing: pip install -e '.[book]' (sphinx-mathjax-offline)") from None
    if not (folder / MATHJAX_ENTRY).exists():
        raise RuntimeError(f"MathJax is incomplete at {folder}: {MATHJAX_ENTRY} is missing")
    return folder


def stage(profile_name: str, executed: list[Execution]) -> Path:
    """Lay out the book sources for Sphinx: book/ files plus the executed notebooks (without the exercises'
    solutions where the profile says `book: {solutions: false}`) and MathJax."""
    src = BUILD_DIR / "src"
    wanted = set()
    for path in BOOK_DIR.rglob("*"):
        rel = path.relative_to(BOOK_DIR)
        if path.is_file() and rel.parts[0] != "_build" and rel != Path("_config.yml"):
            _sync(path, src / rel)
            wanted.add(src / rel)
    config = launch.staged_config(yaml.safe_load((BOOK_DIR / "_config.yml").read_text()), launch.repository_url())
    text = yaml.safe_dump(config, sort_keys=False)
    if not (src / "_config.yml").exists() or (src / "_config.yml").read_text() != text:
        src.mkdir(parents=True, exist_ok=True)
        (src / "_config.yml").write_text(text)
    wanted.add(src / "_config.yml")
    solutions = notebook_params.load(profile_name).solutions
    changed = False
    for ex in executed:
        staged = src / "notebooks" / f"{ex.stem}.ipynb"
        nb = json.loads(ex.output.read_text(encoding="utf-8"))
        responsive_figures(nb)
        if not solutions:  # a student build
            without_solutions(nb)
        changed |= _sync_text(json.dumps(nb, indent=1, ensure_ascii=False), staged)
        wanted.add(staged)
    if changed:  # figure numbers may have moved: Sphinx re-reads a page only when its own file is newer,
        for page in src.glob("*.md"):  # so pages that cite figures by number ({numref}) are touched
            if "{numref}" in page.read_text(encoding="utf-8"):
                page.touch()
    for stale in [p for p in src.rglob("*") if p.is_file() and OFFLINE_STATIC not in p.parts]:
        if stale not in wanted:
            stale.unlink()
    stage_static(src)
    return src


def sphinx_build(src: Path, path_output: Path, *, strict: bool = True) -> subprocess.CompletedProcess:
    """`jupyter-book build src` into path_output/_build/html, execution off. `strict`: warnings and
    missing references are errors (the book); otherwise they are reported and the build goes on."""
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
           "build", str(src), "--path-output", str(path_output), "--keep-going", "-q"]
    if strict:
        cmd += ["-W", "-n"]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)


def stage_static(src: Path) -> None:
    """MathJax (offline) and the favicon under src/_offline_static, served as _static/."""
    mathjax = src / OFFLINE_STATIC / "mathjax"
    if not (mathjax / MATHJAX_ENTRY).exists():
        shutil.rmtree(mathjax, ignore_errors=True)
        shutil.copytree(_mathjax_dir(), mathjax)
    favicon = src / OFFLINE_STATIC / "favicon.svg"
    if not favicon.exists() or favicon.read_text() != FAVICON:
        favicon.write_text(FAVICON)


def fix_root_redirect(html_dir: Path, title: str) -> Path:
    """Sphinx's index.html (a bare redirect to the root page) with an icon and a title, so a browser asks
    for no missing /favicon.ico."""
    index = html_dir / "index.html"
    redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index.read_text(errors="replace"))
    if redirect:
        index.write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
                         f'<meta http-equiv="Refresh" content="0; url={redirect.group(1)}" />\n'
                         f'<link rel="icon" href="_static/favicon.svg" type="image/svg+xml">\n'
                         f'<title>{title}</title></head>\n'
                         f'<body><a href="{redirect.group(1)}">{title}</a></body></html>\n')
    return index


def build_html(src: Path) -> Path:
    """jupyter-book build, execution off, warnings and missing references as errors."""
    stale = BUILD_DIR / "html" / "index.html"  # the root's redirect is written only when missing: renew it
    if stale.exists() and 'http-equiv="Refresh"' in stale.read_text(errors="replace"):
        stale.unlink()
    proc = sphinx_build(src, BOOK_DIR)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise RuntimeError("jupyter-book build failed (warnings are errors); see the output above")
    index = BUILD_DIR / "html" / "index.html"
    if not index.exists():
        raise RuntimeError(f"jupyter-book finished but {index} is missing")
    return fix_root_redirect(BUILD_DIR / "html", "Cost-optimal grouped-query attention")


def build_book(profile_name: str, *, force: bool = False, html: bool = True,
               only: list[str] | None = None) -> Path | None:
    start = time.perf_counter()
    stale = launch.out_of_sync()
    if stale:
        raise ValueError(f"the first cell of {', '.join(stale)} names another repository than book/_config.yml's "
                         f"repository.url ({launch.repository_url() or 'unset'}): run `gqa book --sync-launch`")
    executed = execute_all(profile_name, force=force, only=only)
    if not html:
        return None
    src = stage(profile_name, executed)
    t = time.perf_counter()
    print("building HTML ...", flush=True)
    index = build_html(src)
    print(f"built {index.relative_to(ROOT)} in {time.perf_counter() - t:.1f}s "
          f"(profile {profiles.resolve(profile_name).stem}, {time.perf_counter() - start:.1f}s in all)", flush=True)
    return index
