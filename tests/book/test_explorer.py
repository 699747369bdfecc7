"""Chapter 1's cost explorer: its first view is gqa.cost's numbers, its choices are checked (the browser
arithmetic is checked against `gqa cost --json` in test_book.py)."""

import json
import re

import pytest

from gqa import cost
from gqa.shapes import get_preset, preset_names
from gqa.units import format_bytes
from gqa_book.explorer import cost_explorer_html, preset_constants


def test_first_view_shows_gqa_costs_numbers():
    page = cost_explorer_html("paper-1.2b", 1 << 15, batch=2, kv_dtype="fp8")
    c = cost.inference_cost(get_preset("paper-1.2b"), 1 << 15, batch=2, kv_dtype="fp8")
    assert f'data-gqa="kv">{format_bytes(c.bytes_kv_cache)}<' in page
    assert '<option value="paper-1.2b" selected>' in page and 'value="15"' in page
    data = json.loads(re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1))
    assert set(data["presets"]) == set(preset_names())
    assert "<script>" in page and "gqaCostExplorer" in page  # the script is inlined: no file to fetch


def test_preset_constants_are_the_cost_models():
    shape = get_preset("llama-3.1-8b")
    p = preset_constants()["llama-3.1-8b"]
    assert p["params_total"] == shape.params().total
    assert p["matmul_params"] == shape.params().total - shape.params().embedding  # untied: a lookup


@pytest.mark.parametrize("choices", [dict(preset="gpt-5"), dict(context=3000), dict(context=1 << 22),
                                     dict(kv_dtype="fp6"), dict(batch=0)])
def test_bad_choices_are_refused(choices):
    with pytest.raises(ValueError):
        cost_explorer_html(**choices)
