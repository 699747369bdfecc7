"""`gqa sweep --executor local|slurm`: one submitit job per run, each claiming its run before it trains.
Tested with submitit's local executor (subprocesses), the same code path a Slurm job runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gqa import runs
from gqa.cli import main
from gqa.config import sweep_configs

pytest.importorskip("submitit", reason="the cluster extra (pip install 'gqa[cluster]') is what this tests")

PROFILE = """extends: ci
sweep:
  heads: [[2, 1], [1, 1]]
  sizes: [[1, 16]]
"""


def _env(runs_dir: Path) -> dict:
    return dict(os.environ, GQA_RUNS_DIR=str(runs_dir))


def _section(path: Path) -> dict:
    from gqa import profiles

    return profiles.load(str(path)).section("sweep")


@pytest.mark.slow
def test_two_sweeps_submitting_jobs_at_once_record_every_run_once(tmp_path):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    command = [sys.executable, "-m", "gqa.cli", "sweep", "--profile", str(profile), "--executor", "local"]
    procs = [subprocess.Popen(command + ["--jobs-dir", str(tmp_path / f"jobs{i}")], env=_env(runs_dir),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    (store,) = runs_dir.glob("*.jsonl")  # a profile given as a file names its store <stem>-<digest>
    assert store.name.startswith("tiny-")
    records = [json.loads(line) for line in store.read_text().splitlines()]
    wanted = {c.run_id() for c in sweep_configs(_section(profile))}
    assert sorted(r["run_id"] for r in records) == sorted(wanted)  # each run once, none twice
    assert sum(o.count("submitted job") for o in outputs) >= 2
    assert all("Traceback" not in o for o in outputs)


def test_a_job_leaves_a_run_another_process_claims(tmp_path, monkeypatch, capsys):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE.replace("[[2, 1], [1, 1]]", "[[2, 1]]"))
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("GQA_RUNS_DIR", str(runs_dir))  # the job's subprocess inherits it
    monkeypatch.setattr(runs, "RUNS_DIR", runs_dir)
    (cfg,) = sweep_configs(_section(profile))
    with runs.claim(cfg.run_id()):  # another sweep is training it
        assert main(["sweep", "--profile", str(profile), "--executor", "local",
                     "--jobs-dir", str(tmp_path / "jobs")]) == 0
    out = capsys.readouterr().out
    assert "skipped (recorded or claimed)" in out
    assert not list(runs_dir.glob("*.jsonl"))


def test_cluster_options_are_checked(capsys):
    assert main(["sweep", "--profile", "ci", "--executor", "pbs"]) == 2
    assert "pbs" in capsys.readouterr().err
