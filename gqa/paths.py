"""Where things live, computed once: in a source tree, its folders; in an installed package, user folders.

In a source tree (the package's parent holds pyproject.toml and notebooks/: a checkout, or an unpacked
sdist), data, run stores and caches stay where they are: data/, data/runs/, .cache/. An installed `gqa`
never writes inside its install folder: its caches (checkpoints, claims, the token cache, the readings
cache) go to $XDG_CACHE_HOME/gqa (default ~/.cache/gqa), its run stores and measured profiles to
$XDG_DATA_HOME/gqa (default ~/.local/share/gqa), and it reads the paper's tables and the profiles from the
copies packaged with it. GQA_WORK_DIR, GQA_RUNS_DIR and GQA_CACHE override the folders in both cases.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent  # the repository root in a checkout
IN_CHECKOUT = (ROOT / "pyproject.toml").is_file() and (ROOT / "notebooks").is_dir()


def _user_dir(variable: str, default: str) -> Path:
    """$variable/gqa (an XDG base directory), else ~/default/gqa."""
    base = os.environ.get(variable)
    return (Path(base).expanduser() if base and Path(base).is_absolute() else Path.home() / default) / "gqa"


def env_folder(variable: str) -> Path | None:
    """The folder an environment variable names (GQA_WORK_DIR, GQA_RUNS_DIR, GQA_CACHE): `~` expanded and a
    relative path made absolute against the current folder; None when unset. Child processes that run
    elsewhere (the book's notebooks run in notebooks/) get the absolute form (`absolute_folder_variables`)."""
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else None


def _env_dir(variable: str, fallback: Path) -> Path:
    return env_folder(variable) or fallback


DATA_DIR = ROOT / "data" if IN_CHECKOUT else _user_dir("XDG_DATA_HOME", ".local/share")
RUNS_DIR = _env_dir("GQA_RUNS_DIR", DATA_DIR / "runs")  # run stores
PROFILES_DATA_DIR = DATA_DIR / "profiles"  # measured attention sweeps and benchmarks
NOTEBOOK_DIR = ROOT / "notebooks"  # the book's folders: a checkout only
BOOK_DIR = ROOT / "book"
BUILD_DIR = BOOK_DIR / "_build"
# The profiles: notebooks/params/ in a checkout, the packaged copy (gqa/profile_data) in an installed wheel.
PARAMS_DIR = NOTEBOOK_DIR / "params" if (NOTEBOOK_DIR / "params").is_dir() else PACKAGE_DIR / "profile_data"
# checkpoints, claims, caches
CACHE_DIR = _env_dir("GQA_WORK_DIR", ROOT / ".cache" if IN_CHECKOUT else _user_dir("XDG_CACHE_HOME", ".cache"))
RUN_CACHE_DIR = CACHE_DIR / "runs"  # a run's checkpoints: <profile>/<run id>/, train/<run id>/, notebook/<settings id>/
# The paper's tables: data/paper/ in a checkout, the packaged copy (gqa/paper_data) in an installed wheel.
PAPER_DATA_DIR = ROOT / "data" / "paper" if (ROOT / "data" / "paper").is_dir() else PACKAGE_DIR / "paper_data"


FOLDER_VARIABLES = {"GQA_WORK_DIR": "checkpoints, claims and caches", "GQA_CACHE": "the token cache",
                    "GQA_RUNS_DIR": "the run stores"}


def absolute_folder_variables() -> dict[str, str]:
    """The folder variables that are set, each as an absolute path: for the environment of a child process
    that runs in another folder."""
    return {name: str(env_folder(name)) for name in FOLDER_VARIABLES if os.environ.get(name)}


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


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks: the one way the package fingerprints a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hash_files(h: hashlib._Hash, files: list[Path]) -> None:
    """Add a set of files to a running hash: each one's name (relative to the repository when inside it) and
    its SHA-256, in name order, so a renamed file changes the hash as a changed one does."""
    for path in sorted(files):
        h.update(f"{display_path(path)}\0{file_sha256(path)}\n".encode())


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
