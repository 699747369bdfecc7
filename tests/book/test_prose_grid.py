"""The prose over a grid of parameters: every chapter executed at a low and a high end of its parameters
(the ci book is the middle), its generated sentences checked. Apart from the book's build tests, and each end
scheduled on its own (tests/conftest.py), so that `make test`'s two workers share the work (each execution
writes only into its own folder)."""

import json
from pathlib import Path

import pytest
from test_book import PRECISE_GLUES

from gqa import profiles
from gqa_book import book, notebook_params
from gqa_book.notebook import glued_values

# Each chapter's parameters at a low and a high extreme; with the ci profile's values in between, every
# parameter takes at least three values. Chosen to stay cheap on two cores (chapter 3 trains a tiny model).
# Each end runs as a profile extending ci (chapter 2's ends extend cpu, whose committed attention sweep they
# read: the ci book itself measures one live; chapter 5's high end too, whose run store has every
# configuration), so the profile checks decide what is allowed.
PROSE_GRID_BASE = {"02_attention": ("cpu", "cpu"), "05_cost_optimal": ("ci", "cpu")}
PROSE_GRID = {
    "00_what_reproduced": ({"readings_resamples": 5}, {"readings_resamples": 20}),
    "01_cost_model": ({"bar_context": 1024, "contexts": [1024], "share_models": ["paper-85m"], "dtype": "fp32",
                       "baseline": "paper-85m", "baseline_heads": [12, 12], "ours": "paper-85m", "ours_heads": [1, 1]},
                      {"bar_context": 1048576, "contexts": [1024, 4194304], "dtype": "fp8",
                       "share_models": ["paper-85m", "paper-470m", "paper-1.2b", "paper-1.8b"],
                       "baseline": "paper-1.8b", "baseline_heads": [16, 4], "ours": "paper-470m",
                       "ours_heads": [4, 2]}),
    "02_attention": ({"live_sweep": False, "headline_context": 1024}, {"live_sweep": False, "headline_context": 65536}),
    "03_training": ({"vocab_size": 300, "max_bytes": 2000000, "layers": 2, "d_model": 16, "n_heads": 2, "n_kv_heads": 2,
                     "head_dim": 8, "context": 16, "batch_size": 2, "tokens_per_param": 2, "lr": 1.0e-4,
                     "eval_interval": 10,
                     "eval_tokens": 1024, "limits_resamples": 10, "pilot_profile": "ci"},
                    {"vocab_size": 1024, "max_bytes": 2500000, "layers": 3, "d_model": 40, "n_heads": 6,
                     "n_kv_heads": 3, "head_dim": 24,
                     "context": 128, "batch_size": 16, "tokens_per_param": 1, "lr": 0.01, "eval_interval": 1000,
                     "eval_tokens": 16384,
                     "limits_resamples": 200, "pilot_profile": "cpu"}),
    "04_scaling_fits": ({"context": 1024, "dtype": "fp32", "resamples": 10, "shared_e": True, "study_profile": "ci",
                         "pilot_profile": "ci"},
                        {"context": 1048576, "dtype": "fp8", "resamples": 200}),
    "05_cost_optimal": ({"contexts": [1024, 2048, 4096, 8192], "baseline": [4, 1], "headline_context": 1024,
                         "dtype": "fp32", "resamples": 10, "regime_batches": [1, 2], "regime_hardware": "a800",
                         "study_contexts": [256, 1024], "study_targets": [3.0, 2.7, 2.4]},
                        {"contexts": [524288, 1048576], "baseline": [8, 8], "headline_context": 1048576,
                         "dtype": "fp8", "resamples": 200, "regime_batches": [1, 64, 256, 1024],
                         "regime_hardware": "mi300x", "study_contexts": [65536, 262144, 1048576], "study_profile": "ci",
                         "pilot_profile": "cpu"}),
    "06_paper_check": ({"context": 1024, "resamples": 10, "shared_e": True, "readings_resamples": 5},
                       {"context": 1048576, "resamples": 200, "readings_resamples": 20}),
}


def test_the_prose_grid_covers_every_parameter_three_times():
    ci = profiles.load("ci")
    for stem in notebook_params.notebook_stems():
        cell = notebook_params.notebook_parameters_cell(stem)
        low, high = PROSE_GRID[stem]
        middle = {k: ci.notebook_parameters(stem).get(k, cell[k][0]) for k in cell}
        for i, end in enumerate((low, high)):  # each end a profile may hold
            base = profiles.load(PROSE_GRID_BASE.get(stem, ("ci", "ci"))[i])
            assert not profiles.check_file(base.path, {"extends": base.name, "notebooks": {stem: end}}), (stem, i)
        for key in cell:
            if key in ("profile", "retrain", "corpus", "targets", "study_targets", "study_profile", "pilot_profile"):
                continue  # set by the build, a download, None meaning "the fits' own range", or a run store
            values = {json.dumps(v.get(key, middle[key])) for v in (low, high)} | {json.dumps(middle[key])}
            boolean = isinstance(cell[key][0], bool)
            assert len(values) >= (2 if boolean else 3), (stem, key, values)


def _prose_grid_runs(folder: Path) -> list[tuple[str, int, dict]]:
    """Each end of PROSE_GRID as (chapter, 0 or 1, its parameters), each checked as a profile is."""
    import yaml

    runs = []
    for stem, ends in PROSE_GRID.items():
        for i, params in enumerate(ends):
            path = folder / f"{stem}-{i}.yaml"
            base = PROSE_GRID_BASE.get(stem, ("ci", "ci"))[i]
            path.write_text(yaml.safe_dump({"extends": base, "notebooks": {stem: params}}))
            runs.append((stem, i, profiles.load(path).notebook_parameters(stem)))
    return runs


def _ends() -> list[tuple[str, int]]:
    return [(stem, i) for stem in PROSE_GRID for i in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("stem, end", _ends(), ids=[f"{s}-{'low' if i == 0 else 'high'}" for s, i in _ends()])
def test_generated_prose_holds_over_a_grid_of_parameters(tmp_path, stem, end):
    """A chapter executed with its parameters at one end of PROSE_GRID (the ci book is the middle): no glued
    sentence or value shows nonsense (`text_problems`), and every value the prose cites is glued."""
    from gqa_book.notebook import text_problems
    from gqa_book.render import GLUE_ROLE

    (params,) = [p for s, i, p in _prose_grid_runs(tmp_path) if (s, i) == (stem, end)]
    out = tmp_path / f"{stem}-{end}.ipynb"
    book.execute_notebook(book.NOTEBOOK_DIR / f"{stem}.ipynb", out, params)
    glued = glued_values(out)
    nb = json.loads(out.read_text())
    cited = {m.group(1) for c in nb["cells"] if c["cell_type"] == "markdown"
             for m in GLUE_ROLE.finditer("".join(c["source"]))}
    problems = [f"{name} is cited but not glued" for name in sorted(cited - set(glued))]
    for name, text in glued.items():
        if name.startswith("panels:"):
            continue
        problems += [f"{name}: {p}" for p in text_problems(text.strip("'\""),
                                                           max_digits=4 if name in PRECISE_GLUES else 3)]
    assert not problems, "\n".join(problems)
