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


def test_first_cell_without_the_book_tools_stops_with_one_line_and_clones_nothing(monkeypatch):
    """No repository configured, or gqa installed without its book tools (a local install, not Colab): one
    line saying what to install, and no clone."""
    import subprocess
    import sys

    monkeypatch.setitem(sys.modules, "gqa_book.hosted", None)  # the import fails, as without the book tools
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    for url in ("", URL):  # gqa itself imports here
        with pytest.raises(SystemExit) as stopped:
            exec(compile(launch.cell_source(url), "<first cell>", "exec"), {})
        message = str(stopped.value)
        assert "\n" not in message and "booktools" in message and "gqa book --sync-launch" in message


def _colab(tmp_path, monkeypatch):
    """A bare runtime: HOME in tmp_path, the book tools importable only from a clone at ~/gqa-companion,
    gqa only once pip has 'installed' it, and commands recorded instead of run. Returns (clone, commands)."""
    import importlib.util
    import shutil
    import subprocess
    import sys

    from gqa_book import hosted

    clone, installed, commands = tmp_path / "gqa-companion", [], []

    def fake_run(command, check):
        commands.append(command)
        if command[:2] == ["git", "clone"]:
            (clone / "booktools" / "gqa_book").mkdir(parents=True)
            for name in ("__init__.py", "hosted.py"):
                shutil.copy(hosted.Path(hosted.__file__).with_name(name), clone / "booktools" / "gqa_book" / name)
        else:
            installed.append(True)

    class NotInstalled:  # the book tools import only from the clone, once it exists
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "gqa_book" and not clone.exists():
                raise ModuleNotFoundError(name)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gqa" and not installed else real_find_spec(name, *a))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(hosted.CLONE_ENV, raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "meta_path", [NotInstalled, *sys.meta_path])
    for name in ("gqa_book", "gqa_book.hosted"):
        monkeypatch.delitem(sys.modules, name)
    return clone, commands


def test_first_cell_in_colab_clones_then_installs_the_clone_and_runs_ci(tmp_path, monkeypatch):
    """Colab: the book tools do not import, so the cell clones the repository under ~ and imports the
    installer from the clone; the installer, finding no gqa, pip-installs the clone (editable, book extra and
    book tools), marks it, and returns "ci". Run again, or in a restarted kernel, it installs nothing and
    still says "ci"."""
    import os
    import sys

    from gqa_book import hosted

    clone, commands = _colab(tmp_path, monkeypatch)
    scope = {}
    exec(compile(launch.cell_source(URL), "<first cell>", "exec"), scope)
    pip = [sys.executable, "-m", "pip", "install", "-q", "-e", f"{clone}[book]", "-e", f"{clone}/booktools"]
    assert commands == [["git", "clone", "--depth", "1", URL, str(clone)], pip]
    assert scope["HOSTED_PROFILE"] == "ci" and sys.modules["gqa_book.hosted"].__file__.startswith(str(clone))
    assert sys.path[:3] == [str(clone), str(clone / "booktools"), f"{clone}/booktools"]
    assert (clone / hosted.MARKER).exists()
    commands.clear()
    exec(compile(launch.cell_source(URL), "<first cell>", "exec"), scope)  # the cell run again
    for name in ("gqa_book", "gqa_book.hosted"):
        sys.modules.pop(name)
    os.environ.pop(hosted.CLONE_ENV)
    exec(compile(launch.cell_source(URL), "<first cell>", "exec"), scope)  # a restarted kernel
    assert commands == [] and scope["HOSTED_PROFILE"] == "ci"


def test_a_checkout_that_happens_to_live_at_the_clone_path_is_not_hosted(tmp_path, monkeypatch):
    """A reader's own clone at ~/gqa-companion, installed: its builds keep their parameters (no marker, no
    GQA_HOSTED_CLONE)."""
    import importlib.util
    import shutil

    from gqa_book import hosted

    folder = tmp_path / "gqa-companion" / "booktools" / "gqa_book"
    folder.mkdir(parents=True)
    shutil.copy(hosted.__file__, folder / "hosted.py")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(hosted.CLONE_ENV, raising=False)
    monkeypatch.delenv(hosted.HOSTED_ENV, raising=False)
    spec = importlib.util.spec_from_file_location("hosted_copy", folder / "hosted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.hosted_profile(URL, run=lambda *a, **k: pytest.fail("installed")) is None


def test_the_installer_imports_only_the_standard_library():
    """Colab imports gqa_book.hosted from a bare clone, before anything is installed."""
    import ast
    import sys

    from gqa_book import hosted

    tree = ast.parse(hosted.Path(hosted.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    init = hosted.Path(hosted.__file__).with_name("__init__.py").read_text()
    assert not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.parse(init).body)


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
