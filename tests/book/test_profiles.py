"""Profiles compose (`extends`), are validated before anything runs, and find their data by what made it."""

import json

import pytest
import yaml

from gqa import profiles, runs
from gqa.cli import main
from gqa_book import book, notebook_inputs, notebook_params

pytestmark = pytest.mark.checkout  # reads the checkout's notebooks, book, README or lock

STEMS = notebook_params.notebook_stems()


def write(path, values) -> str:
    path.write_text(yaml.safe_dump(values) if not isinstance(values, str) else values)
    return str(path)


def keys(profile) -> dict[str, str]:
    return {nb.stem: key.name for nb, _, key in book.plan(profile).items}


@pytest.fixture
def executions(monkeypatch) -> list:
    """Every notebook execution `gqa book` starts in this process. (Not the files of book/_build/executed: the
    other pytest worker may be building the ci book into that folder at the same moment.)"""
    started: list = []
    monkeypatch.setattr(book, "execute_notebook", lambda notebook, output, params: started.append(notebook))
    return started


# --- composition -----------------------------------------------------------------------------------


def test_extends_overrides_only_what_it_names(tmp_path):
    path = write(tmp_path / "mine.yaml", {"extends": "cpu", "notebooks": {"06_paper_check": {"context": 524288}},
                                         "sweep": {"train": {"eval_tokens": 1024}}})
    mine, cpu = profiles.load(path), profiles.load("cpu")
    assert mine.name == "mine" and [p.name for p in mine.chain] == ["mine.yaml", "cpu.yaml"]
    assert mine.notebook_parameters("06_paper_check")["context"] == 524288
    expected = cpu.notebook_parameters("05_cost_optimal") | {"profile": mine.ref}
    assert mine.notebook_parameters("05_cost_optimal") == expected
    assert mine.section("attention_profile") == cpu.section("attention_profile")
    assert mine.section("sweep")["train"]["eval_tokens"] == 1024  # merged key by key
    assert mine.section("sweep")["train"]["lr"] == cpu.section("sweep")["train"]["lr"]
    assert mine.section("sweep")["heads"] == cpu.section("sweep")["heads"]
    # a list replaces, it does not append
    two = profiles.load(write(tmp_path / "two.yaml", {"extends": "ci", "sweep": {"heads": [[4, 1]]}}))
    assert two.section("sweep")["heads"] == [[4, 1]]


def test_extends_loop_and_missing_parent_are_errors(tmp_path):
    write(tmp_path / "a.yaml", {"extends": "b"})
    write(tmp_path / "b.yaml", {"extends": "a"})
    with pytest.raises(profiles.ProfileError, match="loops back"):
        profiles.load(str(tmp_path / "a.yaml"))
    with pytest.raises(profiles.ProfileError, match="extends: unknown profile 'nowhere'"):
        profiles.load(write(tmp_path / "c.yaml", {"extends": "nowhere"}))


def test_a_profile_that_changes_chapter_6_reuses_the_cpu_data(tmp_path):
    """Data is found by what produced it, so a derived profile needs no sweep and no attention profile."""
    path = write(tmp_path / "mine.yaml", {"extends": "cpu", "notebooks": {"06_paper_check": {"context": 524288}}})
    plan = book.plan(path)
    assert plan.gaps == []
    assert keys(path) | {"06_paper_check": None} == keys("cpu") | {"06_paper_check": None}
    assert keys(path)["06_paper_check"] != keys("cpu")["06_paper_check"]


def test_sweep_dry_run_of_a_derived_profile_has_nothing_to_train(tmp_path, capsys):
    path = write(tmp_path / "mine.yaml", {"extends": "cpu"})
    assert main(["sweep", "--profile", path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "42 runs: 42 recorded in data/runs/, 0 to train" in out and "todo" not in out


# --- the cache key covers exactly the inputs --------------------------------------------------------


@pytest.mark.parametrize("change, expected", [
    ({"attention_profile": {"decode_contexts": [1024, 4096, 8192]}}, {"02_attention"}),
    ({"sweep": {"train": {"eval_tokens": 4096}}}, {"03_training", "04_scaling_fits", "05_cost_optimal"}),
    ({"notebooks": {"06_paper_check": {"readings_resamples": 20}}}, {"06_paper_check"}),
    ({"notebooks": {"03_training": {"lr": 0.001}}}, {"03_training"}),
    ({"description": "another line"}, set()),
])
def test_changing_a_profile_section_changes_exactly_the_notebooks_that_read_it(tmp_path, change, expected):
    path = write(tmp_path / "mine.yaml", {"extends": "ci", **change})
    before, after = keys("ci"), keys(path)
    assert {stem for stem in STEMS if before[stem] != after[stem]} == expected


def test_unrelated_files_under_data_change_no_key(tmp_path, monkeypatch):
    before = keys("ci")
    store = tmp_path / "runs"
    store.mkdir()
    for path in runs.RUNS_DIR.glob("*.jsonl"):
        (store / path.name).write_bytes(path.read_bytes())
    stray = {"run_id": "0123456789abcdef", "val_loss": 1.0}
    (store / "someone-else.jsonl").write_text(json.dumps(stray) + "\n")  # another study's record
    (store / "ci.jsonl.lock").write_text("")
    monkeypatch.setattr(runs, "RUNS_DIR", store)
    lock = notebook_inputs.DATA_DIR / "paper" / "table4.csv.lock"
    lock.write_text("")
    try:
        assert keys("ci") == before
    finally:
        lock.unlink()


def test_a_changed_library_version_changes_every_key(monkeypatch):
    before = keys("ci")
    real = notebook_inputs.library_versions()
    monkeypatch.setattr(notebook_inputs, "library_versions", lambda: real | {"numpy": real["numpy"] + ".post1"})
    after = keys("ci")
    assert all(before[s] != after[s] for s in STEMS)


def test_force_retrains_the_live_model_without_changing_its_key():
    plain, forced = book.plan("ci"), book.plan("ci", force=True)
    by_stem = {nb.stem: (params, key) for nb, params, key in forced.items}
    assert by_stem["03_training"][0]["retrain"] is True
    assert all("retrain" not in params for nb, params, _ in forced.items if nb.stem != "03_training")
    assert [key for *_, key in plain.items] == [key for *_, key in forced.items]


# --- data that is missing is named before anything runs ---------------------------------------------


def test_missing_runs_and_sweeps_stop_the_build_with_the_command_that_makes_them(tmp_path, capsys, executions):
    path = write(tmp_path / "bigger.yaml", {
        "extends": "ci", "sweep": {"sizes": [[1, 32], [2, 32], [2, 48], [3, 64]]},
        "attention_profile": {"head_dim": 48}, "notebooks": {"02_attention": {"live_sweep": False}}})
    assert main(["book", "--profile", path, "--no-html"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("gqa book: error: ") for line in err) and "Traceback" not in "\n".join(err)
    assert any(line.startswith("gqa book: error: 02_attention: no attention sweep") and "gqa profile --profile" in line
               for line in err)
    runs_gap = [line for line in err if "04_scaling_fits" in line]
    assert runs_gap and "2 of the 8 runs" in runs_gap[0] and "gqa sweep --profile" in runs_gap[0]
    assert executions == []  # nothing ran


# --- validation: one line per mistake, exit 2, nothing executed, no cache entry -----------------------

BAD_PROFILES = [
    ({"extends": "ci", "notebooks": {"06_paper_chek": {"context": 524288}}},
     "notebooks.06_paper_chek: no such notebook"),
    ({"extends": "ci", "notebooks": {"06_paper_check": {"contxt": 524288}}}, "06_paper_check.contxt: not a parameter"),
    ({"extends": "ci", "notebooks": {"06_paper_check": {"context": "512k"}}}, "06_paper_check.context: expected int"),
    ({"extends": "ci", "notebooks": {"04_scaling_fits": {"shared_e": "yes"}}}, "shared_e: expected bool"),
    ({"extends": "ci", "notebooks": {"01_cost_model": {"contexts": [1024, "2k"]}}}, "contexts: expected a list of int"),
    ({"extends": "ci", "notebooks": {"03_training": {"max_bytes": "all"}}}, "max_bytes: expected"),
    ({"extends": "ci", "notebooks": {"03_training": {"retrain": True}}}, "retrain: set by gqa book itself"),
    ({"extends": "ci", "notebook": {}}, "notebook: unknown key"),
    ({"extends": "ci", "attention_profile": {"kv_head": [2]}}, "attention_profile.kv_head: unknown key"),
    ({"extends": "ci", "attention_profile": {"kv_heads": ["two"]}},
     "attention_profile.kv_heads: expected a list of int"),
    ({"extends": "ci", "attention_profile": {"n_heads": 16, "kv_heads": [3]}}, "attention_profile:"),
    ({"extends": "ci", "sweep": {"train": {"lr": "fast"}}}, "sweep.train.lr: expected float"),
    ({"extends": "ci", "sweep": {"trian": {}}}, "sweep.trian: unknown key"),
    ({"extends": "ci", "sweep": {"data": {"vocab": 512}}}, "sweep.data.vocab: unknown key"),
    ({"extends": "ci", "sweep": {"heads": [[4]]}}, "sweep.heads: expected a list of [n_h, n_kv] pairs"),
    ({"extends": "ci", "sweep": {"data": {"vocab_size": 10}}}, "sweep: vocab_size must lie in (257, 1,048,576]"),
    ({"extends": "ci", "profile": "other"}, "profile: 'other' does not match the file name 'bad'"),
    ({"extends": "ci", "book": {"solutions": "no"}}, "book.solutions: expected true or false, got 'no'"),
    ({"extends": "ci", "book": {"answers": False}}, "book.answers: unknown key; known: solutions"),
    ({"extends": "ci", "book": [1]}, "book: expected a mapping"),
    ("extends: ci\nnotebooks: [1, 2\n", "not valid YAML"),
    ("- just\n- a list\n", "a profile is a mapping of keys"),
]


@pytest.mark.parametrize("content, message", BAD_PROFILES, ids=[m for _, m in BAD_PROFILES])
def test_profile_mistakes_exit_2_with_one_line_each_and_run_nothing(tmp_path, capsys, content, message, executions):
    path = write(tmp_path / "bad.yaml", content)
    assert main(["book", "--profile", path]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0] and "bad.yaml" in lines[0] and lines[0].startswith("gqa book: error: ")
    assert executions == []  # nothing ran


def test_all_mistakes_of_a_profile_are_reported_at_once(tmp_path, capsys):
    path = write(tmp_path / "bad.yaml", {"extends": "ci", "notebooks": {"06_paper_chek": {}, "01_cost_model": {"x": 1}},
                                         "attention_profile": {"kv_head": [1]}})
    assert main(["book", "--profile", path]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3


def test_the_other_commands_validate_profiles_too(tmp_path, capsys):
    path = write(tmp_path / "bad.yaml", {"extends": "ci", "sweep": {"train": {"lr": "fast"}}})
    for argv in (["sweep", "--profile", path, "--dry-run"], ["profile", "--profile", path, "--checks-only"]):
        assert main(argv) == 2
        assert "sweep.train.lr: expected float" in capsys.readouterr().err


@pytest.mark.parametrize("value, default, ok", [
    (3, 1, True), (1.5, 1, False), (True, 1, False), (3, 1.0, True), ("a", 1.0, False), (False, True, True),
    ([1, 2], [1024], True), ([1, "2k"], [1024], False), ("x", [1], False), (None, None, True), ([1], None, True),
])
def test_parameter_types_follow_the_notebook_defaults(value, default, ok):
    assert (notebook_params.value_problem(value, default) is None) == ok


def test_an_empty_notebooks_section_is_no_notebooks(tmp_path):
    profile = profiles.load(write(tmp_path / "e.yaml", "extends: ci\nnotebooks:\n"))
    assert profile.notebook_parameters("01_cost_model") == profiles.load("ci").notebook_parameters("01_cost_model") | {
        "profile": profile.ref}


def test_the_student_profile_is_the_cpu_book_without_solutions():
    student, cpu = profiles.load("student"), profiles.load("cpu")
    assert not student.solutions and cpu.solutions and profiles.load("ci").solutions
    for stem in notebook_params.notebook_stems():
        mine, theirs = student.notebook_parameters(stem), cpu.notebook_parameters(stem)
        assert {k: v for k, v in mine.items() if k != "profile"} == {k: v for k, v in theirs.items() if k != "profile"}
