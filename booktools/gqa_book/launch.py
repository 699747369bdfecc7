"""Opening a chapter in a hosted runtime (Colab, Binder): launch buttons and the notebooks' first cell.

One setting drives both: `repository.url` in book/_config.yml (or the environment variable
GQA_REPOSITORY_URL, which wins). When it is set, `gqa book` turns on the Colab and Binder launch buttons,
and every notebook's first cell (tagged remove-cell, so the book never shows it) names the same URL: in
a runtime where the book tools do not import (Colab), it clones the repository, and
`gqa_book.hosted.hosted_profile` installs it with its book extra and the book tools (booktools/) and
returns "ci", so the notebook runs its ci-sized parameters (`hosted_parameters`).
Binder builds its image from binder/ (repo2docker's conventions: runtime.txt, requirements.txt, postBuild
installing the companion, and a start script exporting GQA_HOSTED_PROFILE=ci, which the cell reads); a book
build or `gqa run` executes with that variable removed, so only a hosted session sees it. Where gqa imports
and the variable is unset, the cell does nothing. `gqa book --sync-launch` writes the URL into the first
cells; a build whose cells disagree with the setting stops and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import yaml

from gqa.paths import BOOK_DIR, NOTEBOOK_DIR
from gqa_book.hosted import CLONE, CLONE_ENV, HOSTED_ENV

CELL_ID = "hosted-setup"
CELL_TEMPLATE = '''# Opened in Colab or Binder? Then this installs what is missing, and the chapter runs the ci
# profile's small parameters (gqa_book.hosted). In a checkout, or under `gqa book`, it changes nothing.
REPOSITORY = {url!r}  # book/_config.yml repository.url, written by `gqa book --sync-launch`
try:
    from gqa_book.hosted import hosted_profile
except ImportError:  # Colab: nothing installed yet; clone the repository and use its installer
    import importlib.util, os, subprocess, sys
    if importlib.util.find_spec("gqa") or not REPOSITORY:
        raise SystemExit("the book tools (gqa_book) are not installed here: `make setup` in a checkout (or pip "
                         "install -e booktools); to install from a repository in Colab, set repository.url in "
                         "book/_config.yml and run `gqa book --sync-launch`")
    os.environ[{clone_env!r}] = CLONE = os.path.expanduser({clone!r})
    os.path.isdir(CLONE) or subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, CLONE], check=True)
    sys.path.insert(0, CLONE + "/booktools")
    from gqa_book.hosted import hosted_profile
HOSTED_PROFILE = hosted_profile(REPOSITORY)  # read by the cell after the parameters'''


def repository_url() -> str:
    """The one setting: GQA_REPOSITORY_URL, else book/_config.yml's repository.url ('' when unset)."""
    if os.environ.get("GQA_REPOSITORY_URL"):
        return os.environ["GQA_REPOSITORY_URL"].strip()
    config = yaml.safe_load((BOOK_DIR / "_config.yml").read_text()) or {}
    return str((config.get("repository") or {}).get("url") or "").strip()


def check_url(url: str) -> None:
    if url and not re.fullmatch(r"https://(github\.com|gitlab\.com)/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"repository.url {url!r} must look like https://github.com/OWNER/REPO")


def staged_config(config: dict, url: str) -> dict:
    """The book's Jupyter Book config with launch buttons on when the repository URL is set."""
    check_url(url)
    config = json.loads(json.dumps(config))  # a deep copy
    if url:
        config.setdefault("repository", {}).update({"url": url, "path_to_book": "", "branch": "main"})
        config.setdefault("launch_buttons", {}).update(
            {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"})
        config.setdefault("html", {})["use_repository_button"] = True
    return config


def cell_source(url: str) -> str:
    return CELL_TEMPLATE.format(url=url, clone=CLONE, clone_env=CLONE_ENV)


def first_cell_url(notebook: Path) -> str | None:
    """The REPOSITORY a notebook's first cell names (None: it has no such cell)."""
    nb = json.loads(notebook.read_text())
    cell = next((c for c in nb["cells"] if c.get("id") == CELL_ID), None)
    if cell is None:
        return None
    match = re.search(r"^REPOSITORY = (['\"])(.*?)\1", "".join(cell["source"]), re.M)
    return match.group(2) if match else None


def out_of_sync(url: str | None = None) -> list[str]:
    """Notebooks whose first cell is missing or names another repository than the setting."""
    url = repository_url() if url is None else url
    return [nb.stem for nb in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if first_cell_url(nb) != url]


def sync(url: str | None = None) -> list[str]:
    """Write the setting into every notebook's first cell (adding the cell where missing)."""
    url = repository_url() if url is None else url
    check_url(url)
    changed = []
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        lines = cell_source(url).split("\n")
        source = [line + "\n" for line in lines[:-1]] + lines[-1:]
        cell = next((c for c in nb["cells"] if c.get("id") == CELL_ID), None)
        if cell is None:
            cell = {"cell_type": "code", "execution_count": None, "id": CELL_ID,
                    "metadata": {"tags": ["remove-cell"]}, "outputs": [], "source": source}
            nb["cells"].insert(0, cell)
        elif cell["source"] == source:
            continue
        cell["source"] = source
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        changed.append(path.stem)
    return changed


@contextlib.contextmanager
def environment(changes: dict[str, str | None]):
    """Run a block with environment variables set (a value) or removed (None), each restored afterwards;
    yields what they were before."""
    saved = {name: os.environ.get(name) for name in changes}
    _set_environment(changes)
    try:
        yield saved
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def outside_hosted_session():
    """Run a block (a papermill execution) with GQA_HOSTED_PROFILE removed from the environment its kernel
    inherits: the parameters a build or `gqa run` passes are then the ones the notebook uses."""
    with environment({HOSTED_ENV: None}) as saved:
        yield saved[HOSTED_ENV]


def hosted_parameters(stem: str, name: str | None) -> dict:
    """The parameters of profile `name` for a notebook, or {} when it is None: the first cell sets
    HOSTED_PROFILE only in a hosted runtime (Colab's install, Binder's GQA_HOSTED_PROFILE), and a build
    executes without that variable, so nothing can switch a build's parameters behind its cache key. A
    notebook calls it as
    `globals().update(hosted_parameters("01_cost_model", globals().get("HOSTED_PROFILE")))`."""
    if not name:
        return {}
    from gqa_book import notebook_params

    return notebook_params.load(name).notebook_parameters(stem)
