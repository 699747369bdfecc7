"""Hosted runtimes: launch buttons and the notebooks' first cell follow one repository URL setting."""

import json

import pytest

from gqa import book, launch, profiles
from gqa.cli import main

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
    assert scope["REPOSITORY"] == URL and "subprocess" not in scope and "HOSTED_PROFILE" not in scope


def test_first_cell_without_gqa_or_a_repository_prints_one_line_and_never_raises(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gqa", None)  # `import gqa` raises ImportError, as in a bare runtime
    scope = {}
    exec(compile(launch.cell_source(""), "<first cell>", "exec"), scope)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "repository.url" in printed[0] and "gqa book --sync-launch" in printed[0]
    assert "HOSTED_PROFILE" not in scope  # nothing was installed
