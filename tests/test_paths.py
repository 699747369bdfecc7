"""The one atomic text write: the new file replaces the old whole, and a failed write leaves nothing behind."""

import pytest

from gqa.paths import write_text_atomic


def test_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    assert write_text_atomic(target, "new ✓") == target
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from pathlib import Path

    target = tmp_path / "report.json"
    target.write_text("old")

    def broken_replace(self, other):
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_one_file_hash_and_one_json_encoder(tmp_path):
    import hashlib
    import json
    import math

    import numpy as np

    from gqa.paths import file_sha256, hash_files
    from gqa.units import json_safe

    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 10_000)  # several 1 MiB blocks' worth, read in blocks
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    (tmp_path / "a.txt").write_text("a")
    one, two = hashlib.sha256(), hashlib.sha256()
    hash_files(one, [tmp_path / "a.txt", big])
    hash_files(two, [big, tmp_path / "a.txt"])
    assert one.hexdigest() == two.hexdigest()  # order-free
    (tmp_path / "b.txt").write_text("a")
    renamed = hashlib.sha256()
    hash_files(renamed, [tmp_path / "b.txt", big])
    assert renamed.hexdigest() != one.hexdigest()  # same bytes, another name
    value = {"x": np.float64(1.5), "n": np.int64(3), "bad": math.nan, "inf": np.float32("inf"),
             "heads": (8, 1), "arr": np.array([1.0, np.nan])}
    assert json.loads(json.dumps(json_safe(value), allow_nan=False)) == {
        "x": 1.5, "n": 3, "bad": None, "inf": None, "heads": [8, 1], "arr": [1.0, None]}


def test_folder_variables_expand_home_and_become_absolute(tmp_path, monkeypatch):
    """GQA_RUNS_DIR=~/runs names the folder under $HOME for readers and writers alike (never ./~/runs), and
    a relative GQA_CACHE is made absolute against the current folder, for the notebooks' kernels too."""
    from gqa import data, runs
    from gqa.paths import absolute_folder_variables

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GQA_RUNS_DIR", "~/runs")
    assert runs.store_path("x") == tmp_path / "home" / "runs" / "x.jsonl"
    assert runs.runs_dir() == tmp_path / "home" / "runs" and not (tmp_path / "~").exists()
    monkeypatch.setenv("GQA_CACHE", "tokens")
    assert data.cache_root() == tmp_path / "tokens"
    assert absolute_folder_variables()["GQA_CACHE"] == str(tmp_path / "tokens")
