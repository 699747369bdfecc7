"""The README's and the chapters' command recipes, run as a reader would copy them (the book pages'
recipes: test_book.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.checkout  # reads the checkout's notebooks, book, README or lock

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def blocks(kind: str) -> list[str]:
    """Every fenced block of a kind, indented ones (inside a list item) included, dedented."""
    import textwrap

    return [textwrap.dedent(indent + body) for indent, body in
            re.findall(rf"^( *)```{kind}\n(.*?)^ *```", README, re.S | re.M)]


def run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("example", blocks("console"))
def test_cost_console_examples_print_what_the_readme_shows(example):
    command, *shown = example.strip().splitlines()
    assert command.startswith("$ ")
    proc = run(command[2:], ROOT)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    for line in shown:
        if line != "...":
            assert line in printed, line


@pytest.mark.slow  # the recipes at their own sizes (1,000 resamples): about 25 s
def test_fit_and_plan_recipes_run_verbatim(tmp_path):
    """Every line of the "Fit and plan" block, in a scratch folder with the repository's data linked in; the
    `gqa digitise` line is run by tests/test_digitise.py, against the committed points, where the paper's
    image is."""
    block = next(b for b in blocks("bash") if "gqa plan --context 128k" in b)
    (tmp_path / "data").symlink_to(ROOT / "data")
    lines = [line for line in block.strip().splitlines() if not line.startswith("gqa digitise ")]
    assert len(lines) == len(block.strip().splitlines()) - 1
    for line in lines:
        proc = run(line.split("  #")[0], tmp_path)
        assert proc.returncode == 0, (line, proc.stderr[-1500:])
    assert (tmp_path / "fits.json").exists()


def _chapter_commands() -> list[tuple[str, str]]:
    """(chapter, command) for every `gqa` command in a ```bash block of a chapter's prose, continuation lines
    joined: what a reader copies from the book."""
    import re

    out = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for block in re.findall(r"```bash\n(.*?)```", "".join(cell["source"]), re.DOTALL):
                text = block.replace("\\\n", " ")
                out += [(path.stem, " ".join(line.split("  #")[0].split())) for line in text.splitlines()
                        if line.strip().startswith("gqa ")]
    return out


@pytest.mark.parametrize("chapter, command", _chapter_commands())
def test_the_chapters_commands_run_verbatim(tmp_path, chapter, command):
    (tmp_path / "data").symlink_to(ROOT / "data")
    proc = run(command, tmp_path)
    assert proc.returncode == 0, (chapter, command, proc.stderr[-1500:])
    assert proc.stdout.strip(), (chapter, command)


def test_the_chapters_show_commands():
    assert any(chapter == "05_cost_optimal" and "--hardware" in command for chapter, command in _chapter_commands())


@pytest.mark.parametrize("command", ["gqa sweep --profile study-pilot --dry-run", "gqa pilot --partial",
                                     "gqa effect --resamples 200"])
def test_the_pilot_recipes_run_verbatim(command):
    block = next(b for b in blocks("bash") if command in b)
    line = next(line.split("  #")[0].strip() for line in block.splitlines() if line.startswith(command))
    proc = run(line, ROOT)
    assert proc.returncode == 0 or "too few" in proc.stderr or "one seed only" in proc.stderr, proc.stderr
