"""The run store: one JSON object per finished training run, one line each, in data/runs/<name>.jsonl.

Appends hold a file lock and write a whole line at once, so concurrent writers never lose or interleave
a record. Records are written by `gqa train` and `gqa sweep` only; nothing edits them by hand.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from gqa.config import TrainConfig, sweep_configs
from gqa.paths import CACHE_DIR, IN_CHECKOUT, RUNS_DIR, display_path, env_folder
from gqa.paths import ROOT as REPO


def runs_dir(create: bool = False) -> Path:
    """The folder of the run stores: data/runs/, or GQA_RUNS_DIR, which must name a folder (a file, or for a
    reader a folder that is not there, would silently read as "no runs recorded"). A writer (`create`)
    makes the folder. ValueError otherwise."""
    given = env_folder("GQA_RUNS_DIR")
    if given is not None:
        if given.is_file():
            raise ValueError(f"GQA_RUNS_DIR={given} names a file; it must name the folder of the run stores")
        if create:
            given.mkdir(parents=True, exist_ok=True)
        if not given.is_dir():
            raise ValueError(f"GQA_RUNS_DIR={given} does not exist; create the folder or unset GQA_RUNS_DIR "
                             "(default: data/runs/)")
    return given or RUNS_DIR


def store_path(name: str) -> Path:
    """The store a writer appends to (its folder is made if GQA_RUNS_DIR names one not there yet)."""
    return runs_dir(create=True) / f"{name}.jsonl"


def git_commit() -> str:
    """The repository's HEAD commit, with '+dirty' when tracked files differ from it; "unknown" outside a
    checkout (an installed package must not record the commit of whatever repository it sits in)."""
    if not IN_CHECKOUT:
        return "unknown"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append(record: dict, path: Path) -> bool:
    """Append one record atomically (file lock; one write of one line; fsync), unless the store already
    holds its run id: one run, one record. True when written.

    Line-safe: a store whose last line was cut short (a crash or a full disk in the middle of an earlier
    append) has that fragment moved to `<store>.fragments` beside it, named in a warning, before the new
    line is written, so a record is never glued onto it; a write that fails part way (a full disk) is
    truncated back, leaving the store as it was."""
    line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=120):
        _set_aside_fragment(path)
        if record["run_id"] in {r["run_id"] for r in read(path)}:
            return False
        with path.open("ab") as f:
            start = f.tell()
            try:
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                f.truncate(start)
                raise
    return True


def _set_aside_fragment(path: Path) -> None:
    """A store that does not end with a newline ends with a cut-short line: move it to `<store>.fragments`
    (appended there, one per line) and cut the store back to its last whole line."""
    import warnings

    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        keep = data.rfind(b"\n") + 1
        quarantine = path.with_name(path.name + ".fragments")
        with quarantine.open("ab") as q:
            q.write(data[keep:] + b"\n")
            q.flush()
            os.fsync(q.fileno())
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(f"{display_path(path)}: its last line was cut short ({len(data) - keep} bytes, not a whole "
                  f"record); set aside in {display_path(quarantine)}", stacklevel=3)


CLAIMS_DIR = CACHE_DIR / "claims"


class RunClaimed(RuntimeError):
    """Another live process is training this run."""


@contextlib.contextmanager
def claim(run_id: str):
    """Hold the claim on one run while training it: an exclusive lock (flock) on .cache/claims/<id>.lock.
    The operating system releases it when the holder exits or is killed, so a dead process's claim is
    reclaimed by the next one. RunClaimed when a live process holds it."""
    from filelock import Timeout

    CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(CLAIMS_DIR / f"{run_id}.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunClaimed(f"run {run_id} is being trained by another process") from None
    try:
        yield
    finally:
        lock.release()


def read(path: Path) -> list[dict]:
    """Every record of a store, one per run id (the first written wins); a missing store is empty;
    a corrupt line is an error naming the file and line."""
    if not path.exists():
        return []
    records, seen = [], set()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines) and not text.endswith("\n"):
                break  # a line being appended right now (appends end with a newline): not a record yet
            raise ValueError(f"{display_path(path)}:{number}: not a JSON record ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
            raise ValueError(f"{display_path(path)}:{number}: a run record needs a string `run_id`")
        if record["run_id"] not in seen:
            seen.add(record["run_id"])
            records.append(record)
    return records


def settings_id(record: dict) -> str:
    """The run id a record's settings give today (`TrainConfig.run_id` of its `config`), which is how runs
    are matched: records written before ids were computed on typed settings keep their stored run_id, and
    still match. Falls back to the stored run_id when the record has no usable config."""
    try:
        return TrainConfig.from_dict(dict(record["config"])).run_id()
    except (KeyError, TypeError, ValueError):
        return record["run_id"]


def index(directory: Path | None = None) -> dict[str, tuple[dict, str]]:
    """{settings id: (record, store name)} over every store in data/runs/, read once, in name order; the
    first record of a run wins."""
    out: dict[str, tuple[dict, str]] = {}
    for path in sorted((directory or runs_dir()).glob("*.jsonl")):
        for record in read(path):
            out.setdefault(settings_id(record), (record, path.stem))
    return out


def recorded_ids(directory: Path | None = None) -> set[str]:
    """Settings ids of every run recorded in any store of data/runs/."""
    return set(index(directory))


def records_for(configs, directory: Path | None = None) -> tuple[list[dict], list]:
    """The records of these run configurations, found by their settings in any store (what produced them,
    not the profile's name), and the configurations not recorded yet: (records, missing)."""
    by_id = index(directory)
    found = [by_id[c.run_id()][0] for c in configs if c.run_id() in by_id]
    missing = [c for c in configs if c.run_id() not in by_id]
    return found, missing


@dataclass(frozen=True)
class Provenance:
    """Where a set of run records was made: per machine (processor, cores, torch) its runs and hours of
    training, most runs first; every commit as recorded, "+dirty" kept (a working tree with uncommitted
    changes); and how many records carry such a commit."""

    machines: list[tuple[str, int, str, int, float]]  # (cpu, cores, torch, runs, wall-clock hours)
    commits: list[str]  # first 10 hex digits, with "+dirty" where the record says so
    dirty: int
    runs: int


def provenance(records: list[dict]) -> Provenance:
    by_machine: dict[tuple[str, int, str], list[float]] = {}
    for r in records:
        m = r["machine"]
        by_machine.setdefault((str(m["cpu"]), int(m["cores"]), str(m["torch"])), []).append(float(r["wall_time_s"]))
    machines = sorted(((*key, len(t), sum(t) / 3600) for key, t in by_machine.items()), key=lambda m: (-m[3], m[0]))
    dirty = [str(r["git_commit"]).endswith("+dirty") for r in records]
    commits = sorted({str(r["git_commit"])[:10] + ("+dirty" if d else "") for r, d in zip(records, dirty)})
    return Provenance(machines, commits, sum(dirty), len(records))


def frame(records: list[dict]):
    """Records as a pandas DataFrame: scalar fields as columns, loss curves left as lists."""
    import pandas as pd

    return pd.json_normalize(records, sep=".") if records else pd.DataFrame()


def load(path: Path):
    """A store's records as a pandas DataFrame (see `frame`)."""
    return frame(read(path))


def study_records(section: dict, profile: str = "this profile") -> tuple[list[dict], str]:
    """The records of every run a sweep section plans, found by settings in any store of data/runs/, and
    a label naming the stores they came from. An error names the command that trains what is missing."""
    configs = sweep_configs(section)
    by_id = index()
    missing = [c for c in configs if c.run_id() not in by_id]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the {len(configs)} runs of {profile}'s sweep are not "
                                f"recorded in data/runs/: run `gqa sweep --profile {profile}`")
    found = [by_id[c.run_id()] for c in configs]
    stores = sorted({store for _, store in found})
    return [record for record, _ in found], ", ".join(f"data/runs/{name}.jsonl" for name in stores)


# --- The run record --------------------------------------------------------------------------------
# What `gqa train` writes, one JSON object per line of a store: each field, its type and what it means.
# `check_record` validates a new record against all of it before it is written, and a record read for a
# fit against FIT_FIELDS.
RECORD_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "run_id": (str, "hash of the settings that define the run (TrainConfig.run_id)"),
    "config": (dict, "those settings (TrainConfig.identity())"),
    "execution": (dict, "how it ran, not what: attention backend, device, processes, dtype"),
    "labels": (dict, "free-form labels given to `gqa train --label`"),
    "n_heads": (int, "query heads n_h"), "n_kv_heads": (int, "KV heads n_kv"), "head_dim": (int, "d_h"),
    "layers": (int, "L"), "d_model": (int, "d"), "d_ff": (int, "SwiGLU width"), "vocab": (int, "V"),
    "n_non_embedding": (float, "parameters without the embedding (the N of the loss law)"),
    "n_total": (int, "parameters with the (tied) embedding"), "n_numel": (int, "every weight, norms included"),
    "tokens": (int, "training tokens"), "steps": (int, "optimiser steps"), "seed": (int, "seed"),
    "final_train_loss": (float, "last training loss, nats/token"), "val_loss": (float, "validation loss, nats/token"),
    "train_losses": (list, "[step, loss] pairs"), "val_losses": (list, "[step, loss] pairs"),
    "wall_time_s": (float, "training wall time, s"), "tokens_per_s": (float, "training throughput"),
    "corpus_fingerprint": (str, "hash of the token cache it trained on"),
    "git_commit": ((str, type(None)), "commit of the code that trained it, when known"),
    "machine": (dict, "host, processor, cores, torch, python (gqa.machine.describe())"),
    "finished_at": (str, "UTC time, ISO 8601"),
}
FIT_FIELDS = ("n_heads", "n_kv_heads", "head_dim", "vocab", "layers", "d_model", "n_non_embedding", "val_loss")
POSITIVE = {"n_heads", "n_kv_heads", "head_dim", "vocab", "layers", "d_model", "d_ff", "n_non_embedding", "n_total",
            "n_numel", "tokens", "steps"}  # the rest of the numbers may be 0 (a seed) or any finite value (a loss)


def check_record(record: dict, where: str, fields=FIT_FIELDS) -> None:
    """A record's `fields` have the schema's types (integers integral, numbers finite, counts positive):
    ValueError naming the record and the first bad key."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object")
    for key in fields:
        kind, _ = RECORD_SCHEMA[key]
        value = record.get(key)
        if kind in (int, float):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and (float(value).is_integer() if kind is int else True) and (value > 0 or key not in POSITIVE))
            want = ("an integer" if kind is int else "a finite number") + (" > 0" if key in POSITIVE else "")
        else:
            ok = isinstance(value, kind) and (kind is not str or bool(value))
            want = "a " + (kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind))
        if not ok:
            raise ValueError(f"{where}: {key} must be {want}, got {value!r}")
    if {"n_heads", "n_kv_heads"} <= set(fields) and record["n_heads"] % record["n_kv_heads"]:
        raise ValueError(f"{where}: n_heads = {record['n_heads']} is not a multiple of n_kv_heads = "
                         f"{record['n_kv_heads']}")
    for key in ("val_loss", "final_train_loss"):
        if key in fields and record[key] <= 0:
            raise ValueError(f"{where}: {key} must be a positive loss in nats/token, got {record[key]!r}")
