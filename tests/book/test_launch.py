"""Hosted runtimes: launch buttons and the notebooks' first cell follow one repository URL setting."""

import json

import pytest

from gqa import profiles
from gqa.cli import main
from gqa_book import book, launch

URL = "https://github.com/example/gqa-companion"


def test_committed_notebooks_name_the_configured_repository():
    assert launch.out_of_sync() == []
    for nb in book.NOTEBOOK_DIR.glob("*.ipynb"):
        first = json.loads(nb.read_text())["cells"][0]
        assert first["id"] == launch.CELL_ID and "remove-cell" in first["metadata"]["tags"]


def test_a_new_url_needs_a_sync_and_the_build_says_so(monkeypatch, capsys):
    monkeypatch.setenv("GQA_REPOSITORY_URL", URL)
    assert launch.repository_url() == URL
    assert len(launch.out_of_sync()) == len(list(book.NOTEBOOK_DIR.glob("*.ipynb")))
    assert main(["book", "--profile", "ci", "--no-html"]) == 2
    assert "gqa book --sync-launch" in capsys.readouterr().err


def test_sync_writes_the_url_into_each_first_cell(tmp_path, monkeypatch):
    for nb in book.NOTEBOOK_DIR.glob("*.ipynb"):
        (tmp_path / nb.name).write_text(nb.read_text())
    monkeypatch.setattr(launch, "NOTEBOOK_DIR", tmp_path)
    assert len(launch.sync(URL)) == len(list(tmp_path.glob("*.ipynb"))) == 7 and launch.out_of_sync(URL) == []
    assert launch.first_cell_url(tmp_path / "01_cost_model.ipynb") == URL
    assert launch.sync(URL) == []  # idempotent
    with pytest.raises(ValueError, match="OWNER/REPO"):
        launch.sync("not a url")


def test_staged_config_turns_on_launch_buttons_only_with_a_url():
    base = {"launch_buttons": {"binderhub_url": "", "colab_url": ""}, "html": {}}
    assert launch.staged_config(base, "") == base
    on = launch.staged_config(base, URL)
    assert on["repository"]["url"] == URL and on["launch_buttons"]["colab_url"].startswith("https://colab")
    assert on["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert base["launch_buttons"]["colab_url"] == ""  # the book's own config is left alone


def test_hosted_runtime_runs_the_ci_parameters():
    assert launch.hosted_parameters("03_training", None) == {}
    assert launch.hosted_parameters("03_training", "ci") == profiles.load("ci").notebook_parameters("03_training")


def test_first_cell_does_nothing_where_gqa_imports():
    source = launch.cell_source(URL)
    scope = {}
    exec(compile(source, "<first cell>", "exec"), scope)  # gqa imports here: no clone, no install
    assert scope["REPOSITORY"] == URL and "subprocess" not in scope and scope["HOSTED_PROFILE"] is None


def test_first_cell_without_gqa_or_a_repository_prints_one_line_and_never_raises(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gqa", None)  # `import gqa` raises ImportError, as in a bare runtime
    scope = {}
    exec(compile(launch.cell_source(""), "<first cell>", "exec"), scope)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "repository.url" in printed[0] and "gqa book --sync-launch" in printed[0]
    assert scope["HOSTED_PROFILE"] is None  # nothing was installed


def test_first_cell_in_binder_reads_the_profile_its_start_script_exports(monkeypatch):
    monkeypatch.setenv(launch.HOSTED_ENV, "ci")
    scope = {}
    exec(compile(launch.cell_source(URL), "<first cell>", "exec"), scope)  # gqa imports, as in Binder's image
    assert scope["HOSTED_PROFILE"] == "ci" and "subprocess" not in scope


def test_a_build_never_sees_the_hosted_profile(monkeypatch):
    import os

    monkeypatch.setenv(launch.HOSTED_ENV, "ci")
    with launch.outside_hosted_session() as saved:
        assert saved == "ci" and launch.HOSTED_ENV not in os.environ  # what papermill's kernel inherits
    assert os.environ[launch.HOSTED_ENV] == "ci"


def test_binder_files_follow_repo2docker_conventions():
    """binder/: runtime.txt, requirements.txt (the Makefile's torch, CPU build), an executable postBuild that
    installs the companion with its book extra, and an executable start script that exports the hosted
    profile and ends with exec "$@" (repo2docker's rule for start)."""
    import os
    import re

    from gqa.paths import ROOT

    folder = ROOT / "binder"
    runtime = (folder / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.(1[0-9])", runtime), runtime
    makefile_torch = re.search(r"^TORCH \?= (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    requirements = [line.strip() for line in (folder / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert makefile_torch in requirements and any("download.pytorch.org/whl/cpu" in r for r in requirements)
    for script in ("postBuild", "start"):
        assert os.access(folder / script, os.X_OK), f"binder/{script} must be executable"
        assert (folder / script).read_text().startswith("#!/bin/bash\n")
    assert 'pip install --no-cache-dir -e ".[book]"' in (folder / "postBuild").read_text()
    start = [line for line in (folder / "start").read_text().splitlines() if line and not line.startswith("#")]
    assert start[-1] == 'exec "$@"'
    exported = dict(re.findall(r"^export (\w+)=(\S+)$", (folder / "start").read_text(), re.M))
    assert exported == {launch.HOSTED_ENV: "ci"} and "ci" in profiles.profile_names()
