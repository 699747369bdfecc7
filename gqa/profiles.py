"""Profiles: the parameters of a book build, of `gqa profile` and of `gqa sweep`, in one YAML file.

A profile is `notebooks/params/<name>.yaml`, or any YAML file given by its path. Its keys:

  profile:           its name (optional; when given it must match the file name)
  description:       one line
  extends:           another profile (a name, or a path relative to this file) whose values it overrides
  notebooks:         {notebook stem: {parameter: value}}, the papermill parameters of each notebook
  attention_profile: the attention sweep of `gqa profile` (fields of `gqa.config.SweepConfig`)
  sweep:             the training study of `gqa sweep` (`data`, `train`, `heads`, `sizes`, `seeds`)
  book:              how `gqa book` stages the pages: `solutions` (true, or false for a student build whose
                     pages, downloads and PDF leave out the exercises' solutions)

Merging: a mapping merges key by key, recursively; an empty section overrides nothing; any other value
(a list too) replaces the parent's.
`load` validates what the library reads before it returns: unknown keys in every section, wrong types and
values each constructor refuses, each reported on one line that names the file and the key. The notebooks'
parameters (names, types, meanings) are checked by the book tools, which add their checks to `load`
(`gqa_book.notebook_params.load`); the ML commands never parse a notebook. Nothing else in the package reads
a profile's YAML.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from gqa.paths import PARAMS_DIR, display_path

TOP_LEVEL = ("profile", "description", "extends", "notebooks", "attention_profile", "sweep", "book")
BOOK_KEYS = {"solutions": bool}  # the `book` section: key -> type
SWEEP_KEYS = ("data", "train", "heads", "sizes", "seeds")
# Parameters that `gqa book` sets itself: a profile may not set them.
INJECTED = ("profile", "retrain")


class ProfileError(ValueError):
    """One or more problems in a profile, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    chain: tuple[Path, ...]  # this file, then every profile it extends
    values: dict

    @property
    def ref(self) -> str:
        """What notebooks receive as `profile`: the name of a profile in notebooks/params/, else its path."""
        return self.name if self.path.parent.resolve() == PARAMS_DIR.resolve() else str(self.path.resolve())

    def section(self, key: str) -> dict:
        return dict(self.values.get(key) or {})

    @property
    def solutions(self) -> bool:
        """Whether the build shows the exercises' solutions (False: a student build)."""
        return bool(self.section("book").get("solutions", True))

    def notebook_parameters(self, stem: str) -> dict:
        """Papermill parameters for one notebook: the profile's entry plus `profile` itself."""
        return {**((self.values.get("notebooks") or {}).get(stem) or {}), "profile": self.ref}


# Extra checks a caller adds to `load`: of one file's raw mapping, and of the merged profile (a problem a line).
FileCheck = Callable[[Path, dict], list]
MergedCheck = Callable[["Profile"], list]


def profile_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def resolve(name: str | Path, relative_to: Path | None = None) -> Path:
    """The YAML file of a profile given by name (notebooks/params/) or by path."""
    text = str(name)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
        if not path.is_absolute() and relative_to is not None and (relative_to / path).exists():
            path = relative_to / path
        if not path.is_file():
            raise ProfileError([f"no profile file {text!r}"])
        return path
    for folder in ([relative_to] if relative_to else []) + [PARAMS_DIR]:
        if (folder / f"{text}.yaml").is_file():
            return folder / f"{text}.yaml"
    raise ProfileError([f"unknown profile {text!r}; known: {', '.join(profile_names())} "
                        "(or give the path of a .yaml file)"])


class NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a handful of nested aliases expands to billions of values (an
    "alias bomb"), and a profile or a grid of readings never needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"an alias (*{event.anchor}) repeats earlier values; "
                                              "write the values out instead", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str):
    """`yaml.safe_load` that refuses aliases (see NoAliasLoader)."""
    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 -- a SafeLoader subclass


def _read(path: Path) -> dict:
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ProfileError([f"{display_path(path)}{where}: not valid YAML ({reason})"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError([f"{display_path(path)}: cannot read ({e})"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProfileError([f"{display_path(path)}: a profile is a mapping of keys, got a {type(raw).__name__}"])
    return raw


def merge(parent: dict, child: dict) -> dict:
    """Child over parent: mappings merge recursively, every other value replaces."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif value is None and isinstance(out.get(key), dict):
            continue  # an empty section (`notebooks:` with nothing under it) overrides nothing
        else:
            out[key] = value
    return out


def load(name: str | Path, *, file_checks: Sequence[FileCheck] = (),
         merged_checks: Sequence[MergedCheck] = ()) -> Profile:
    """Read, merge along `extends` and validate a profile; a ProfileError lists every problem.

    This checks what the library reads (the sweep, the attention profile, the book switch, the shape of the
    `notebooks` section); `file_checks` (each file's raw mapping) and `merged_checks` (the merged profile)
    add more, as the book tools do for the notebooks' parameters (`gqa_book.notebook_params.load`)."""
    path = resolve(name)
    chain, layers, problems = [], [], []
    current: Path | None = path
    while current is not None:
        if current.resolve() in [p.resolve() for p in chain]:
            raise ProfileError([f"{display_path(current)}: `extends` loops back to itself "
                                f"({' -> '.join(p.stem for p in chain + [current])})"])
        raw = _read(current)
        chain.append(current)
        layers.append(raw)
        problems += check_file(current, raw, file_checks)
        parent = raw.get("extends")
        if parent is None:
            current = None
        elif not isinstance(parent, str):
            problems.append(f"{display_path(current)}: extends: expected a profile name, got {parent!r}")
            current = None
        else:
            try:
                current = resolve(parent, relative_to=current.parent)
            except ProfileError as e:
                raise ProfileError([f"{display_path(chain[-1])}: extends: {e}"]) from None
    values: dict = {}
    for raw in reversed(layers):
        values = merge(values, {k: v for k, v in raw.items() if k not in ("profile", "extends")})
    if not values.get("notebooks"):
        values["notebooks"] = {}
    if problems:
        raise ProfileError(problems)
    profile = Profile(path.stem, path, tuple(chain), values)
    problems = check_merged(profile) + [p for check in merged_checks for p in check(profile)]
    if problems:
        raise ProfileError(problems)
    return profile


# --- Validation ----------------------------------------------------------------------------------


def hint_problem(value: object, hint: object) -> str | None:
    """Why `value` does not fit a dataclass field's type hint (None when it does)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [hint_problem(value, a) for a in args]
        return None if any(p is None for p in problems) else problems[0]
    if hint is type(None):
        return None if value is None else f"expected null, got {value!r}"
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {value!r} ({type(value).__name__})"
        item = args[0] if args else object
        for v in value:
            if hint_problem(v, item):
                return f"expected a list of {getattr(item, '__name__', item)}, got {v!r} in the list"
        return None
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else f"expected a mapping, got {value!r}"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:
        ok = True
    return None if ok else f"expected {getattr(hint, '__name__', hint)}, got {value!r} ({type(value).__name__})"


def check_fields(cls: type, raw: object, where: str) -> list[str]:
    """Unknown keys and wrong types of a mapping meant for dataclass `cls`, one line each."""
    if not isinstance(raw, dict):
        return [f"{where}: expected a mapping, got {raw!r}"]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    problems = []
    for key, value in raw.items():
        if key not in known:
            problems.append(f"{where}.{key}: unknown key; known: {', '.join(sorted(known))}")
        elif (p := hint_problem(value, hints[key])) is not None:
            problems.append(f"{where}.{key}: {p}")
    return problems


def _pairs_problem(value: object, lengths: tuple[int, ...], what: str) -> str | None:
    if not isinstance(value, list) or not value:
        return f"expected a non-empty list of {what}, got {value!r}"
    for item in value:
        ok = (isinstance(item, list) and len(item) in lengths
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item[:2])
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item[2:]))
        if not ok:
            return f"expected a list of {what}, got {item!r} in the list"
    return None


def check_file(path: Path, raw: dict, file_checks: Sequence[FileCheck] = ()) -> list[str]:
    """Problems of one profile file on its own: keys, sections, and what `file_checks` find."""
    from gqa.config import SweepConfig, TrainConfig
    from gqa.data import DataSpec

    where = display_path(path)
    problems = [f"{where}: {key}: unknown key; known: {', '.join(TOP_LEVEL)}" for key in raw if key not in TOP_LEVEL]
    if "profile" in raw and raw["profile"] != path.stem:
        problems.append(f"{where}: profile: {raw['profile']!r} does not match the file name {path.stem!r}")
    notebooks = raw.get("notebooks")
    if notebooks is not None and not isinstance(notebooks, dict):
        problems.append(f"{where}: notebooks: expected a mapping of notebook names, got {notebooks!r}")
    for stem, params in (notebooks or {}).items() if isinstance(notebooks, dict) else ():
        if params is not None and not isinstance(params, dict):
            problems.append(f"{where}: notebooks.{stem}: expected a mapping of parameters, got {params!r}")
    for check in file_checks:  # the book's: notebook names and their parameters
        problems += check(path, raw)
    if "attention_profile" in raw:
        problems += check_fields(SweepConfig, raw["attention_profile"], f"{where}: attention_profile")
    if "book" in raw:
        section = raw["book"]
        if not isinstance(section, dict):
            problems.append(f"{where}: book: expected a mapping such as {{solutions: false}}, got {section!r}")
        else:
            for key, value in section.items():
                if key not in BOOK_KEYS:
                    problems.append(f"{where}: book.{key}: unknown key; known: {', '.join(BOOK_KEYS)}")
                elif not isinstance(value, BOOK_KEYS[key]):
                    problems.append(f"{where}: book.{key}: expected true or false, got {value!r}")
    sweep = raw.get("sweep")
    if sweep is not None:
        if not isinstance(sweep, dict):
            return problems + [f"{where}: sweep: expected a mapping, got {sweep!r}"]
        problems += [f"{where}: sweep.{k}: unknown key; known: {', '.join(SWEEP_KEYS)}" for k in sweep
                     if k not in SWEEP_KEYS]
        if "data" in sweep:
            problems += check_fields(DataSpec, sweep["data"], f"{where}: sweep.data")
        if "train" in sweep:
            problems += check_fields(TrainConfig, sweep["train"], f"{where}: sweep.train")
        if "heads" in sweep and (p := _pairs_problem(sweep["heads"], (2,), "[n_h, n_kv] pairs")):
            problems.append(f"{where}: sweep.heads: {p}")
        if "sizes" in sweep and (p := _pairs_problem(sweep["sizes"], (2, 3), "[layers, d_model(, lr)]")):
            problems.append(f"{where}: sweep.sizes: {p}")
    return problems


def check_merged(profile: Profile) -> list[str]:
    """Problems that only the merged values show: values each section's own constructor refuses."""
    from gqa.config import SweepConfig, sweep_configs

    where = display_path(profile.path)
    problems = []
    if "attention_profile" in profile.values:
        try:
            SweepConfig.from_dict(profile.section("attention_profile"))
        except (ValueError, TypeError) as e:
            problems.append(f"{where}: attention_profile: {e}")
    if "sweep" in profile.values:
        try:
            for cfg in sweep_configs(profile.section("sweep")):
                cfg.data_spec()  # validates the corpus settings
        except (ValueError, TypeError) as e:
            problems.append(f"{where}: sweep: {e}")
    return problems
