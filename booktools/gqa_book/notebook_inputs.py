"""What each chapter notebook reads, and the hash of it: the key of the book's execution cache.

A notebook's key covers exactly its inputs: the notebook file, the parameters it receives (less those
`gqa book` sets for its own bookkeeping), the profile sections it reads, the data it reads (found by
what produced it: the paper's tables, the attention sweep measured with the profile's settings, the run
records of the profile's sweep), the `gqa` source, and the versions of Python and of the libraries that
shape results. Changing one input re-executes the notebooks that read it and no others; a new file
elsewhere under data/ (a lock file, another profile's records) changes no key.

The same reading tells what is missing before anything runs (`Inputs.gaps`), each gap with the command
that makes the data and its expected size.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from gqa.paths import DATA_DIR, PACKAGE_DIR, hash_files
from gqa.profiles import INJECTED, Profile

# Libraries whose versions can change what a notebook computes or draws.
LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "torch", "transformers",
             "tokenizers", "safetensors", "myst-nb")


@dataclass(frozen=True)
class Reads:
    """The inputs a notebook declares beyond its parameters."""

    sections: tuple[str, ...] = ()  # profile sections it reads
    paper_data: bool = False  # data/paper/
    attention_sweep: bool = False  # a sweep in data/profiles/ (unless its `live_sweep` parameter is true)
    run_records: bool = False  # the records of the profile's sweep, from any store in data/runs/
    needs_all_runs: bool = False  # it cannot run until every planned run is recorded


READS: dict[str, Reads] = {
    "00_what_reproduced": Reads(paper_data=True),
    "01_cost_model": Reads(paper_data=True),
    "02_attention": Reads(sections=("attention_profile",), attention_sweep=True),
    "03_training": Reads(sections=("sweep",), run_records=True),
    "04_scaling_fits": Reads(sections=("sweep",), run_records=True, needs_all_runs=True),
    "05_cost_optimal": Reads(sections=("sweep",), run_records=True, needs_all_runs=True),
    "06_paper_check": Reads(paper_data=True),
}
# A notebook not declared above (a reader's own) is taken to read everything.
EVERYTHING = Reads(sections=("attention_profile", "sweep"), paper_data=True, attention_sweep=True,
                   run_records=True)


@dataclass
class Inputs:
    key: str
    gaps: list[str] = field(default_factory=list)  # data the notebook needs that is not there


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def source_files() -> list[Path]:
    """The code a notebook runs: the library's Python and the C++ of its CPU decode kernel (chapter 2 times
    it), and the book's machinery (glue, plots, exercises)."""
    folder, book = PACKAGE_DIR, Path(__file__).resolve().parent
    return sorted([*folder.rglob("*.py"), *(folder / "kernels").glob("*.cpp"), *(folder / "kernels").glob("*.h"),
                   *book.rglob("*.py"), *book.glob("*.js")])


def environment_digest() -> str:
    """What every notebook's key shares: the `gqa` source and the library versions (hash it once a build)."""
    h = hashlib.sha256()
    hash_files(h, source_files())
    h.update(json.dumps(library_versions(), sort_keys=True).encode())
    return h.hexdigest()


def paper_files() -> list[Path]:
    folder = DATA_DIR / "paper"
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def _attention_sweep(profile: Profile, params: dict, h: hashlib._Hash, gaps: list[str]) -> None:
    if params.get("live_sweep"):
        h.update(b"live sweep")
        return
    from gqa import profiling

    cfg = profiling.SweepConfig.from_dict(profile.section("attention_profile"))
    rows = profiling.find_sweep(cfg)
    if rows is None:
        n = len(profiling.expected_cases(cfg))
        gaps.append(f"no attention sweep in data/profiles/ measured with these settings ({cfg.device}, {cfg.dtype}, "
                    f"batch {cfg.batch}, n_h {cfg.n_heads}, d_h {cfg.head_dim}, {n} cases): run "
                    f"`gqa profile --profile {profile.ref}` (at least {2 * n * cfg.min_seconds / 60:.0f} min), "
                    "or set live_sweep: true")
        h.update(b"no sweep")
        return
    h.update(rows.drop(columns=["source"]).to_csv(index=False).encode())


def _run_records(profile: Profile, reads: Reads, h: hashlib._Hash, gaps: list[str]) -> None:
    from gqa import runs
    from gqa.config import sweep_configs

    section = profile.section("sweep")
    if not section:
        if reads.needs_all_runs:
            gaps.append(f"profile {profile.name!r} has no `sweep` section, so there are no runs to fit")
        h.update(b"no sweep section")
        return
    configs = sweep_configs(section)
    found, missing = runs.records_for(configs)
    h.update(json.dumps(sorted(found, key=lambda r: r["run_id"]), sort_keys=True).encode())
    if missing and reads.needs_all_runs:
        tokens = sum(c.budget_tokens(c.vocab_size) for c in missing)
        speeds = [r["tokens_per_s"] for r in found if r.get("tokens_per_s")]
        when = ""
        if speeds:
            speeds.sort()
            when = f", about {tokens / speeds[len(speeds) // 2] / 3600:.1f} h at the recorded speed"
        gaps.append(f"{len(missing)} of the {len(configs)} runs of the sweep are not recorded in data/runs/: run "
                    f"`gqa sweep --profile {profile.ref}` ({len(missing)} runs, {tokens / 1e6:.1f}M tokens{when})")


def notebook_inputs(notebook: Path, params: dict, profile: Profile, environment: str | None = None) -> Inputs:
    """The cache key of one notebook under a profile, and what it needs that is missing. `environment` is
    `environment_digest()`, passed in when several notebooks are keyed at once."""
    reads = READS.get(notebook.stem, EVERYTHING)
    h, gaps = hashlib.sha256(), []
    hash_files(h, [notebook])
    h.update(json.dumps({k: v for k, v in params.items() if k not in INJECTED}, sort_keys=True).encode())
    h.update(json.dumps({s: profile.section(s) for s in reads.sections}, sort_keys=True, default=str).encode())
    if reads.paper_data:
        hash_files(h, paper_files())
    if reads.attention_sweep:
        _attention_sweep(profile, params, h, gaps)
    if reads.run_records:
        _run_records(profile, reads, h, gaps)
    h.update((environment or environment_digest()).encode())
    return Inputs(h.hexdigest(), gaps)
