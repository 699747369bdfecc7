"""`gqa render`: executed notebooks become pages rendered by myst-nb with the book's configuration: glued
values in the prose, roles, numbered equations and dropdowns as in the book, and no raw MyST."""

import base64
import html
import json
import re

import nbformat
import pytest

from gqa.cli import main
from gqa.units import count_phrase, signed
from gqa_book.render import render_site

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                                     "0000000d4944415478da6360000002000100e221bc330000000049454e44ae426082")).decode()
RAW_MYST = ("{glue", "{doc}", "{ref}", "{numref}", "(eq-", ")=", ":class:", "```", "{admonition}", "$$", "\\tag")


def glue_output(name: str, text: str) -> dict:
    return nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": text},
                                  metadata={"scrapbook": {"name": name,
                                                          "mime_prefix": "application/papermill.record/"}})


def executed(tmp_path, markdown: str, glued: dict[str, str], name: str = "run"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("context = 131072", metadata={"tags": ["parameters"]})
    code = nbformat.v4.new_code_cell("glue(...)", metadata={"tags": ["hide-input"]})
    code.outputs = [glue_output(k, v) for k, v in glued.items()]
    code.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}))
    hidden = nbformat.v4.new_code_cell("secret()", metadata={"tags": ["remove-cell"]})
    hidden.outputs = [nbformat.v4.new_output("stream", name="stdout", text="SHOULD NOT SHOW")]
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter\n\n" + markdown), params, code, hidden]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def visible_text(page: str) -> str:
    """The article's text as a reader sees it; math (typeset by MathJax in the browser) left out."""
    article = re.search(r'<article class="bd-article"[^>]*>(.*)</article>', page, re.S).group(1)
    article = re.sub(r'<(span|div) class="math[^>]*>.*?</\1>', " ", article, flags=re.S)
    article = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", article, flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article)).split())
    return re.sub(r"\(\s+", "(", re.sub(r"\s+([,.;:)])", r"\1", text))


def test_render_builds_the_prose_roles_equations_and_dropdowns_as_the_book_does(tmp_path):
    path = executed(tmp_path, "(eq-9)=\n$$E = mc^2 \\tag{9}$$\n\nAt $T$ = {glue:text}`T_label` the saving is "
                              "{glue:text}`saving` ({glue:}`count` cells), by {ref}`Eq. 9 <eq-9>`; symbols in "
                              "{doc}`../notation`, more in {doc}`01_cost_model`.\n\n```{admonition} Solution\n"
                              ":class: dropdown\n\n{glue:text}`count`.\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                    {"T_label": "'512K'", "saving": "'21.4%'", "count": "9"})
    result = render_site([path])
    assert result.path == tmp_path / "run_html" / "index.html" and result.path.exists()
    page = result.pages[0].read_text()
    text = visible_text(page)
    assert "At = 512K the saving is 21.4% (9 cells), by Eq. 9; symbols in Notation, more in 01_cost_model." in text
    assert "512K" in text and "'512K'" not in text and result.substituted == 4 and result.missing == []
    assert not [raw for raw in RAW_MYST if raw in text], [raw for raw in RAW_MYST if raw in text]
    assert 'class="dropdown admonition"' in page and "<table" in page and 'id="eq-9"' in page
    assert 'href="../notation.html"' in page and result.outside_references == 1  # 01_cost_model: plain text
    assert result.figures == 1 and len(re.findall(r'<img [^>]*src="[^"]*\.png"', page)) == 1
    assert "SHOULD NOT SHOW" not in page and "context = 131072" in text
    assert "_static/mathjax/tex-chtml.js" in page and "cdn" not in page.lower().split("mathjax")[0][-200:]


def test_render_marks_values_the_run_never_computed(tmp_path, capsys):
    path = executed(tmp_path, "Value {glue:text}`there`, value {glue:text}`absent`.", {"there": "1"})
    result = render_site([path], tmp_path / "out")
    assert result.missing == ["absent"] and result.path == tmp_path / "out" / "index.html"
    assert main(["render", str(path), "--out", str(tmp_path / "again")]) == 0
    assert "absent" in capsys.readouterr().err
    assert main(["render", str(path), "--out", str(tmp_path / "strict"), "--strict"]) == 2


@pytest.mark.parametrize("content", ["not json", json.dumps([1, 2]), json.dumps({"cells": []})])
def test_render_refuses_what_is_not_an_executed_notebook(tmp_path, capsys, content):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    assert main(["render", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x.ipynb" in err and not (tmp_path / "x_html").exists()


def test_render_refuses_two_runs_of_one_name_and_a_folder_it_did_not_write(tmp_path, capsys):
    a = executed(tmp_path, "x", {})
    (tmp_path / "b").mkdir()
    b = executed(tmp_path / "b", "y", {})
    assert main(["render", str(a), str(b)]) == 2 and "share a name" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["render", str(a), "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_sentence_helpers_choose_by_the_number():
    assert signed(0.5, lower="lowers by {}", higher="raises by {}", same="same") == "lowers by 0.500"
    assert signed(-0.2514, lower="lowers by {}", higher="raises by {}", same="same") == "raises by 0.251"
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
    page = render_site([path]).pages[0].read_text()
    assert "context = 131072" not in page and "524288" in page
    assert "x | y" in visible_text(page) and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


def test_a_runs_scripts_do_not_reach_its_page():
    from gqa_book.render import without_scripts

    nb = {"cells": [
        {"cell_type": "markdown", "source": ["Text <script>alert(1)</script> and <img src=x onerror=\"alert(2)\">"]},
        {"cell_type": "code", "outputs": [
            {"data": {"text/html": "<div onclick='x()'>t</div><SCRIPT src=evil.js></SCRIPT>",
                      "application/javascript": "alert(3)", "text/plain": "t"}},
            {"data": {"text/html": ["<b>bold</b>", "<script>unclosed"]}}]}]}
    assert without_scripts(nb) == 6
    text = json.dumps(nb).lower()
    assert "script" not in text and "onerror" not in text and "onclick" not in text and "alert" not in text
    assert nb["cells"][0]["source"].startswith("Text  and <img src=x")
    assert nb["cells"][1]["outputs"][0]["data"] == {"text/html": "<div>t</div>", "text/plain": "t"}
    assert nb["cells"][1]["outputs"][1]["data"]["text/html"] == "<b>bold</b>"
