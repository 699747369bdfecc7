"""`gqa render`: an executed notebook becomes a standalone page with its glued values in the prose."""

import base64
import json

import nbformat
import pytest

from gqa.cli import main
from gqa.notebook import count_phrase, signed
from gqa.render import render_html, substitute

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                                     "0000000d4944415478da6360000002000100e221bc330000000049454e44ae426082")).decode()


def glue_output(name: str, text: str) -> dict:
    return nbformat.v4.new_output("display_data", data={"text/plain": text},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": ""}})


def executed(tmp_path, markdown: str, glued: dict[str, str]):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("context = 524288", metadata={"tags": ["parameters"]})
    code = nbformat.v4.new_code_cell("glue(...)", metadata={"tags": ["hide-input"]})
    code.outputs = [glue_output(k, v) for k, v in glued.items()]
    code.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}))
    hidden = nbformat.v4.new_code_cell("secret()", metadata={"tags": ["remove-cell"]})
    hidden.outputs = [nbformat.v4.new_output("stream", name="stdout", text="SHOULD NOT SHOW")]
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\n" + markdown), params, code, hidden]
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    return path


def test_render_fills_the_prose_embeds_figures_and_drops_removed_cells(tmp_path):
    path = executed(tmp_path, "At $T$ = {glue:text}`T_label` the saving is {glue:text}`saving` "
                              "({glue:}`count` cells, {glue:text}`share:.1%`).\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                    {"T_label": "'512K'", "saving": "'21.4%'", "count": "9", "share": "0.25"})
    result = render_html(path)
    page = result.path.read_text()
    assert result.path == tmp_path / "run.html" and result.substituted == 4 and result.missing == []
    assert "At <span class=\"math\">T</span> = 512K the saving is 21.4% (9 cells, 25.0%)." in page
    assert "{glue" not in page and "'512K'" not in page
    assert result.figures == 1 and f"data:image/png;base64,{PNG}" in page
    assert "<table>" in page and "<title>A chapter</title>" in page
    assert "context = 524288" in page and "SHOULD NOT SHOW" not in page


def test_render_marks_values_the_run_never_computed(tmp_path, capsys):
    path = executed(tmp_path, "Value {glue:text}`there`, value {glue:text}`absent`.", {"there": "1"})
    result = render_html(path, tmp_path / "out.html")
    assert result.missing == ["absent"] and "[absent: not computed]" in result.path.read_text()
    assert main(["render", str(path)]) == 0 and "absent" in capsys.readouterr().err
    assert main(["render", str(path), "--strict"]) == 2


@pytest.mark.parametrize("content", ["not json", json.dumps([1, 2]), json.dumps({"cells": []})])
def test_render_refuses_what_is_not_an_executed_notebook(tmp_path, capsys, content):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    assert main(["render", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x.ipynb" in err and not (tmp_path / "x.html").exists()


def test_substitute_leaves_other_roles_alone():
    text, n, missing = substitute("{glue:text}`a` and {ref}`b`", {"a": "x"})
    assert (text, n, missing) == ("x and {ref}`b`", 1, [])


def test_sentence_helpers_choose_by_the_number():
    assert signed(0.5, lower="lowers by {}", higher="raises by {}", same="same") == "lowers by 0.500"
    assert signed(-0.25, lower="lowers by {}", higher="raises by {}", same="same") == "raises by 0.250"
    assert signed(0.0, lower="lowers by {}", higher="raises by {}", same="same") == "same"
    assert [count_phrase(k, n, "size") for k, n in ((5, 5), (0, 5), (3, 5), (2, 2), (1, 1))] == [
        "all 5 sizes", "none of the 5 sizes", "3 of the 5 sizes", "both sizes", "the only size"]


def test_render_shows_the_values_the_run_used_and_escapes_glued_text(tmp_path):
    path = executed(tmp_path, "| a | b |\n|---|---|\n| {glue:text}`pipe` | {glue:text}`tag` |", {
        "pipe": "'x | y'", "tag": "'<b>bold</b>'"})
    nb = nbformat.read(path, as_version=4)
    nb.metadata["papermill"] = {"parameters": {"context": 131072 * 4}}
    injected = nbformat.v4.new_code_cell("context = 524288", metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(2, injected)
    nbformat.write(nb, path)
    page = render_html(path).path.read_text()
    assert "context = 524288" in page and "context = 131072" not in page.split("parameters of this run")[1][:200]
    assert "<td>x | y</td>" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
