"""Chapters run with other parameters, and the recipes of the README and "Run it yourself" that build no book,
each run as a reader would. Apart from test_book.py (whose tests share one build of the ci book, on one worker)
so that `make test`'s two workers share them: tests/conftest.py schedules each test of this file on its own."""

import html
import json
import re
from pathlib import Path

import pytest
from test_book import _bash_block, _run_bash

from gqa import paper, profiles
from gqa_book import book
from gqa_book.notebook import glued_values


def _image_payloads(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return [out["data"]["image/png"] for c in nb["cells"] for out in c.get("outputs", [])
            if "image/png" in out.get("data", {})]


def _ci_execution(stem: str, folder: Path) -> Path:
    """A chapter executed with the ci profile's parameters: the ci book's own cached execution where its build
    (on the other worker) has made it, else a fresh one in `folder` (the cache is left to the build)."""
    ((notebook, params, output),) = [item for item in book.plan("ci").items if item[0].stem == stem]
    if book._readable_notebook(output):  # False when it is not there
        return output
    fresh = folder / f"{stem}-ci.ipynb"
    book.execute_notebook(notebook, fresh, params)
    return fresh


@pytest.mark.slow
def test_cost_notebook_uses_its_context_parameter(tmp_path):
    nb = book.NOTEBOOK_DIR / "01_cost_model.ipynb"
    ci = profiles.load("ci").notebook_parameters(nb.stem)
    assert ci["bar_context"] == 131072  # so the ci book's own execution is the 128K run
    runs = {}
    for context in (8192, 131072):
        out = tmp_path / f"{context}.ipynb"
        if context == ci["bar_context"]:
            out = _ci_execution(nb.stem, tmp_path)
        else:
            book.execute_notebook(nb, out, ci | {"bar_context": context})
        runs[context] = (glued_values(out), _image_payloads(out))
    (g8, img8), (g128, img128) = runs[8192], runs[131072]
    assert g8["T_label"] == "'8K'" and g128["T_label"] == "'128K'"
    assert g8["base_kv_bytes"] != g128["base_kv_bytes"]
    assert g8["mem_saving"] != g128["mem_saving"]
    assert len(img8) == len(img128) >= 4
    # the head-sharing diagram and the weights-against-cache plot do not depend on the bars' context; the
    # Figure 1 bars (the third image) were redrawn
    assert img8[:2] == img128[:2] and img8[2] != img128[2]


@pytest.mark.slow
def test_paper_check_follows_its_context_and_the_claims_tolerances(tmp_path):
    nb = book.NOTEBOOK_DIR / "06_paper_check.ipynb"
    base = profiles.load("ci").notebook_parameters(nb.stem)
    book.execute_notebook(nb, tmp_path / "32k.ipynb", base | {"context": 32768})
    default, short = glued_values(_ci_execution(nb.stem, tmp_path)), glued_values(tmp_path / "32k.ipynb")
    assert default["T_label"] == "'128K'" and short["T_label"] == "'32K'"  # Figure 9-11 mode
    assert "digitised" in default["dots_from"] and "identified shapes" in short["dots_from"]
    # the paper's claims stay at 128K whatever the context, judged by the tolerances of claims.csv
    assert default["n_reproduced"] == short["n_reproduced"]
    claims = paper.claims()
    assert default["tol_saving_pp"] == repr(f"{100 * claims['fig1_memory_saving'].tolerance:g}")
    assert default["tol_loss"] == repr(f"{claims['fig1_loss_gain_equal_z'].tolerance:g}")


@pytest.mark.slow
def test_beyond_one_machine_recipes_run_verbatim():
    """The cluster recipes of "Run it yourself": submitit's local executor here, Slurm's absence said in one
    line, and the multi-node torchrun command with its single-machine defaults."""
    sweep = _run_bash(_bash_block(book.BOOK_DIR / "run_it_yourself.md", "--executor slurm"), book.ROOT)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert "sweep ci: 6 runs, 6 recorded, 0 to train" in sweep.stdout
    assert "needs Slurm" in sweep.stderr and "Traceback" not in sweep.stderr
    ddp = _run_bash(_bash_block(book.BOOK_DIR / "run_it_yourself.md", "torchrun"), book.ROOT)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert re.search(r"val loss \d+\.\d+ after 40,960 tokens", ddp.stdout + ddp.stderr)


@pytest.mark.slow
def test_readme_papermill_recipe_runs_verbatim_and_renders():
    readme = _bash_block(book.ROOT / "README.md", "papermill notebooks/06_paper_check.ipynb")
    assert readme == _bash_block(book.BOOK_DIR / "run_it_yourself.md", "papermill notebooks/06_paper_check.ipynb")
    proc = _run_bash(readme, book.ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = Path("/tmp/paper_check_512k.ipynb")
    values = glued_values(run)
    assert Path("/tmp/paper_check_512k_html/index.html").exists()
    page = Path("/tmp/paper_check_512k_html/notebooks/paper_check_512k.html").read_text()
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r'<(span|div) class="math[^>]*>.*?</\1>', " T ",
                                                                    page, flags=re.S))).split())
    assert "{glue" not in text and len(re.findall(r'<img [^>]*src="(?:data:image/png|[^"]*\.png)', page)) >= 3
    assert "At T = 512K" in text
    for name in ("ctx_mem_saving", "ctx_flops_saving", "ctx_best", "n_reproduced"):  # the headline at 512K
        assert values[name].strip("'\"") in text, name
    assert "context = 524288" in text  # the parameters the run used
    assert Path("/tmp/cost_32k_html/notebooks/cost_32k.html").read_text().count("{glue:") == 0


@pytest.mark.slow
def test_readme_list_parameter_recipes_run_verbatim_with_gqa_run_and_papermill_y():
    script = _bash_block(book.ROOT / "README.md", "gqa run notebooks/01_cost_model.ipynb")
    proc = _run_bash(script, book.ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for out in ("/tmp/cost_short.ipynb", "/tmp/cost_short_pm.ipynb"):
        nb = json.loads(Path(out).read_text())
        injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        assert "contexts = [2048, 4096, 8192]" in "".join(injected["source"]), out
    assert glued_values(Path("/tmp/cost_short.ipynb"))["profile"] == "'ci'"
