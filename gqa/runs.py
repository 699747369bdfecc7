"""The run store: one JSON object per finished training run, one line each, in data/runs/<name>.jsonl.

Appends hold a file lock and write a whole line at once, so concurrent writers never lose or interleave
a record. Records are written by `gqa train` and `gqa sweep` only; nothing edits them by hand.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from filelock import FileLock

RUNS_DIR = Path(__file__).resolve().parents[1] / "data" / "runs"
REPO = Path(__file__).resolve().parents[1]


def store_path(name: str) -> Path:
    return RUNS_DIR / f"{name}.jsonl"


def git_commit() -> str:
    """The repository's HEAD commit, with '+dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """Where a run ran: host, processor or GPU, core count, torch version."""
    import torch

    from gqa.profiling import device_name

    info = {"host": platform.node(), "cpu": device_name("cpu"), "cores": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def append(record: dict, path: Path) -> None:
    """Append one record atomically (file lock; one write of one line; fsync)."""
    line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=120):
        with path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def read(path: Path) -> list[dict]:
    """Every record of a store; a missing store is empty; a corrupt line is an error naming it."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON record ({e.msg})") from None
    return records


def recorded_ids(path: Path) -> set[str]:
    return {r["run_id"] for r in read(path)}


def load(path: Path):
    """Records as a pandas DataFrame: scalar fields as columns, loss curves left as lists."""
    import pandas as pd

    records = read(path)
    if not records:
        return pd.DataFrame()
    return pd.json_normalize(records, sep=".")
