"""pyproject.toml and environment.yml list the same dependencies."""

import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

import pytest
import yaml

pytestmark = pytest.mark.checkout  # reads the checkout's notebooks, book, README or lock

ROOT = Path(__file__).resolve().parents[1]


def _normalise(spec: str) -> tuple[str, str]:
    name = re.match(r"[A-Za-z0-9_.\-]+", spec).group(0)
    return name.lower().replace("_", "-"), spec[len(name):].replace(" ", "")


CONDA_NAMES = {"pytorch": "torch"}  # conda-forge's name -> the PyPI name pyproject uses
PIP_ONLY = {"sphinx-mathjax-offline"}  # not on conda-forge


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [spec for spec in project["dependencies"] + extras["models"] + extras["book"] + extras["dev"]
              + extras["cluster"] if not spec.startswith("gqa[")]  # cuda extra: pip only
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip += item["pip"]
        elif not item.startswith(("python=", "pip")):
            conda.append(item)
    have = dict(_normalise(s.split("#")[0].strip()) for s in conda + pip)
    have = {CONDA_NAMES.get(name, name): version for name, version in have.items()}
    assert have == dict(_normalise(s) for s in wanted)
    assert {_normalise(s)[0] for s in pip} == PIP_ONLY  # pip only for what conda-forge lacks


def test_citation_file_is_valid_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "license"):
        assert cff[key], key
    paper = cff["references"][0]
    assert paper["type"] == "conference-paper" and paper["year"] == 2025
    assert [a["family-names"] for a in paper["authors"]][0] == "Chen"
    assert "CITATION.cff" in (ROOT / "book" / "references.md").read_text()


def _locked() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)} of requirements/lock.txt."""
    text = (ROOT / "requirements" / "lock.txt").read_text()
    out = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", entry)
        if match:
            out[match.group(1).lower().replace("_", "-")] = (match.group(2), re.findall(r"sha256:[0-9a-f]{64}", entry))
    return out


def test_the_lock_pins_every_requirement_of_pyproject_within_its_range():
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    locked = _locked()
    wanted = [Requirement(s) for key in ("models", "hf", "book", "dev", "cluster") for s in extras[key]
              if not s.startswith("gqa[")] + [Requirement(s) for s in project["dependencies"]]
    for req in wanted:
        name = req.name.lower().replace("_", "-")
        assert name in locked, f"{name} is in pyproject.toml but not in requirements/lock.txt: run `make lock`"
        version, hashes = locked[name]
        assert req.specifier.contains(Version(version), prereleases=True), (name, version, str(req.specifier))
    assert all(hashes for _, hashes in locked.values())  # every pin carries its hashes (pip --require-hashes)
    assert locked["torch"][0].endswith("+cpu")  # the CPU build
    assert "gqa" not in locked and "@ file:" not in (ROOT / "requirements" / "lock.txt").read_text()


def test_make_installs_from_the_lock_by_default():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(LOCK)" in makefile and "ifeq ($(UNLOCKED),)" in makefile
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "download.pytorch.org/whl/cpu" in workflow and "TORCH=torch" not in workflow


@pytest.mark.slow
def test_the_sdist_and_wheel_build_without_warnings(tmp_path):
    """setuptools' own build hooks (what `python -m build` calls), every Python warning an error: no missing
    package, no deprecated setting; the sdist carries the tests' shared fixtures and the lock."""
    import shutil
    import tarfile

    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:  # the committed tree only, as a clean checkout has it
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    code = ("import sys; from setuptools import build_meta as b\n"
            "print(b.build_sdist(sys.argv[1])); print(b.build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code, str(tmp_path / "dist")], cwd=source,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]
    sdist = next((tmp_path / "dist").glob("gqa-*.tar.gz"))
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"tests/conftest.py", "requirements/lock.txt", "pyproject.toml", "LICENSE"} <= names
    # Its tests run where it is unpacked: a library module's pass, a checkout's are skipped with the reason.
    tarfile.open(sdist).extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "tests/test_shapes.py", "tests/test_search.py"], cwd=unpacked, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "passed" in proc.stdout and "needs a checkout of the repository" in proc.stdout, proc.stdout[-3000:]
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["urls"] and any("Artificial Intelligence" in c for c in meta["classifiers"])
