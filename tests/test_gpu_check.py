"""`make gpu-check` on a bare CUDA box: it installs nothing, names what is missing, and its code runs
(on the CPU at tiny sizes, `--dry-run`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_make_target_uses_the_given_python_and_installs_nothing():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ngpu-check:")[1].split("\n\n")[0]
    assert "$(PYTHON) -m gqa.gpu_check" in recipe and "pip" not in recipe and "$(BIN)" not in recipe
    assert makefile.split("\ngpu-check:")[1].split("\n")[0].strip() == ""  # no prerequisite (no .venv)


def test_a_missing_package_is_named(monkeypatch, capsys):
    from gqa import gpu_check

    monkeypatch.setattr(gpu_check, "REQUIRED", ("torch", "no_such_package_here"))
    assert gpu_check.main(["--dry-run"]) == 2
    assert "missing Python packages: no_such_package_here" in capsys.readouterr().err


def test_no_cuda_is_one_line(capsys):
    import torch

    from gqa import gpu_check

    if torch.cuda.is_available():
        return  # a GPU machine: the real check is `make gpu-check`
    assert gpu_check.main([]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err


@pytest.mark.slow  # every part of the GPU check, tiny, on the CPU: about 25 s
def test_dry_run_measures_every_part_at_tiny_sizes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gqa.gpu_check", "--dry-run", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(next(tmp_path.glob("gpu_check_*.json")).read_text())
    assert summary["dry_run"] and summary["sweep_rows"] > 0 and next(tmp_path.glob("*_gpu-check.csv")).exists()
    rows = summary["decode"]["rows"]
    assert {"baseline batch 1", "ours batch 1"} <= set(rows) and all(r["tokens_per_s"] > 0 for r in rows.values())
    assert summary["decode"]["paper_ratio"] == 1.60 and len(summary["training"]) == 2
    assert "over" in proc.stdout.splitlines()[-1]  # the summary line
