"""Where things live in a checkout: the repository root and its folders, computed once."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
RUNS_DIR = Path(os.environ["GQA_RUNS_DIR"]) if os.environ.get("GQA_RUNS_DIR") else DATA_DIR / "runs"  # run stores
PROFILES_DATA_DIR = DATA_DIR / "profiles"
NOTEBOOK_DIR = ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
BOOK_DIR = ROOT / "book"
BUILD_DIR = BOOK_DIR / "_build"
# checkpoints, claims
CACHE_DIR = Path(os.environ["GQA_WORK_DIR"]) if os.environ.get("GQA_WORK_DIR") else ROOT / ".cache"
RUN_CACHE_DIR = CACHE_DIR / "runs"  # a run's checkpoints: <profile>/<run id>/, train/<run id>/, notebook/<settings id>/
# The paper's tables: data/paper/ in a checkout, the packaged copy (gqa/paper_data) in an installed wheel.
PAPER_DATA_DIR = DATA_DIR / "paper" if (DATA_DIR / "paper").is_dir() else Path(__file__).resolve().parent / "paper_data"


FOLDER_VARIABLES = {"GQA_WORK_DIR": "checkpoints, claims and caches", "GQA_CACHE": "the token cache",
                    "GQA_RUNS_DIR": "the run stores"}


def check_environment() -> None:
    """The environment variables that name folders name folders (or nothing yet, to be created; the run
    stores' folder must exist, `gqa.runs.runs_dir`): ValueError naming the variable otherwise."""
    for name, what in FOLDER_VARIABLES.items():
        value = os.environ.get(name)
        if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
            raise ValueError(f"{name}={value} names a file; it must name the folder of {what}")


def display_path(path: Path | str) -> str:
    """A path as a user should read it: relative to the repository when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file of this process renamed into place: a reader
    sees the old file or the new one, never part of one, and two processes at once each write their own
    temporary file. A failed write leaves no temporary file behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
