"""The notebooks' parameters in a profile: what each notebook's `parameters` cell defines (read from the
notebook, never executed), and the checks of a profile's `notebooks` section against it: names, types
(from the defaults, or a quoted annotation), and meanings (`PARAMETER_RULES`). `load` is `gqa.profiles.load`
with these checks added: what `gqa book` and `gqa run` read.
"""

from __future__ import annotations

import ast
import functools
import json
import typing
from pathlib import Path

from gqa import profiles, values
from gqa.paths import NOTEBOOK_DIR, display_path
from gqa.profiles import INJECTED, Profile, hint_problem


def notebook_stems() -> list[str]:
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))


_HINT_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "None": None,
               "Optional": typing.Optional}


@functools.cache
def _parameters_cell(notebook: Path, mtime: float) -> dict[str, tuple[object, object]]:
    """{name: (default, type hint or None)} of a notebook's `parameters` cell. A parameter may carry a quoted
    annotation (`max_bytes: "Optional[int]" = 4000000`, quoted so the notebook never evaluates it, in the
    form papermill reads); without one, its default's type is the rule."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            out = {}
            for node in ast.parse("".join(cell["source"])).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = (ast.literal_eval(node.value), None)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                    note = node.annotation
                    text = note.value if isinstance(note, ast.Constant) else ast.unparse(note)
                    # a type in the names above, nothing else
                    hint = eval(text, {"__builtins__": {}}, dict(_HINT_NAMES))
                    out[node.target.id] = (ast.literal_eval(node.value), hint)
            return out
    return {}


def notebook_parameters_cell(stem: str) -> dict[str, tuple[object, object]]:
    path = NOTEBOOK_DIR / f"{stem}.ipynb"
    return dict(_parameters_cell(path, path.stat().st_mtime))


def notebook_defaults(stem: str) -> dict[str, object]:
    """The parameters a notebook's `parameters` cell defines, with their default values."""
    return {name: default for name, (default, _) in notebook_parameters_cell(stem).items()}


def hint_of(default: object) -> object:
    """The type hint a parameter's default implies: its type, a list of its first item's type, or
    None (anything) for a default of None."""
    if default is None:
        return None
    if isinstance(default, list):
        return list[hint_of(default[0])] if default and default[0] is not None else list
    return type(default)


def value_problem(value: object, default: object) -> str | None:
    """Why `value` cannot replace a parameter whose default is `default` (None when it can)."""
    hint = hint_of(default)
    return None if hint is None else hint_problem(value, hint)


def _preset(value):
    from gqa.shapes import preset_names

    names = value if isinstance(value, list) else [value]
    unknown = [n for n in names if n not in preset_names()]
    if not unknown and names:
        return None
    return f"unknown shape preset {unknown[0] if unknown else value!r}; see `gqa cost --list-presets`"


def _dtype(value):
    from gqa.cost import DTYPE_BYTES

    return values.one_of(DTYPE_BYTES, "known dtypes")(value)


def _hardware(value):
    from gqa.hardware import PRESETS, preset

    try:
        preset(value)
    except (ValueError, AttributeError):
        return f"unknown hardware {value!r}; known: {', '.join(PRESETS)}"
    return None


def _profile(value):
    from gqa.profiles import profile_names

    return None if value in profile_names() else f"unknown profile {value!r}; known: {', '.join(profile_names())}"


def _vocab(value):
    from gqa.data import MAX_VOCAB

    return values.whole(258, MAX_VOCAB)(value)


# What a notebook parameter's value means, by name (a name means one thing in every notebook): a rule gives
# the problem in words, or None. Types are checked first, from the parameters cell's defaults and hints.
PARAMETER_RULES = {
    "readings_resamples": values.COUNT, "resamples": values.COUNT, "limits_resamples": values.COUNT,
    "bar_context": values.COUNT, "headline_context": values.COUNT, "context": values.COUNT,
    "contexts": values.increasing(values.COUNT, "contexts in tokens"),
    "regime_batches": values.each(values.COUNT, "batch sizes"), "regime_hardware": _hardware,
    "targets": values.optional(values.each(values.POSITIVE, "positive target losses")),
    "baseline_heads": values.heads, "ours_heads": values.heads, "dtype": _dtype, "share_models": _preset,
    "vocab_size": _vocab, "max_bytes": values.optional(values.whole(1_000_000)), "layers": values.COUNT,
    "d_model": values.COUNT, "n_heads": values.COUNT, "n_kv_heads": values.COUNT, "head_dim": values.COUNT,
    "batch_size": values.COUNT, "eval_tokens": values.COUNT, "eval_interval": values.NON_NEGATIVE_COUNT,
    "tokens_per_param": values.POSITIVE, "lr": values.POSITIVE,
    "study_profile": _profile, "pilot_profile": _profile,
    "study_contexts": values.increasing(values.COUNT, "contexts in tokens"),
    "study_targets": values.optional(values.each(values.POSITIVE, "positive target losses")),
}
# `baseline` and `ours` name presets in 01_cost_model and a head pair in 05_cost_optimal
NOTEBOOK_RULES = {("01_cost_model", "baseline"): _preset, ("01_cost_model", "ours"): _preset,
                  ("05_cost_optimal", "baseline"): values.heads}


def check_file(path: Path, raw: dict) -> list[str]:
    """The `notebooks` section of one profile file: notebook names, parameter names, types and meanings."""
    where = display_path(path)
    notebooks = raw.get("notebooks")
    problems = []
    for stem, params in (notebooks or {}).items() if isinstance(notebooks, dict) else ():
        if stem not in notebook_stems():
            problems.append(f"{where}: notebooks.{stem}: no such notebook; known: {', '.join(notebook_stems())}")
            continue
        if params is None:
            continue
        if not isinstance(params, dict):
            continue  # said by gqa.profiles
        cell = notebook_parameters_cell(stem)
        for key, value in params.items():
            if key in INJECTED:
                problems.append(f"{where}: notebooks.{stem}.{key}: set by gqa book itself, not by a profile")
            elif key not in cell:
                problems.append(f"{where}: notebooks.{stem}.{key}: not a parameter of {stem}; "
                                f"known: {', '.join(k for k in cell if k not in INJECTED)}")
            else:
                default, hint = cell[key]
                p = value_problem(value, default) if hint is None else hint_problem(value, hint)
                rule = NOTEBOOK_RULES.get((stem, key)) or PARAMETER_RULES.get(key)
                if p is None and rule is not None:
                    p = rule(value)
                if p is not None:
                    problems.append(f"{where}: notebooks.{stem}.{key}: {p}")
    return problems


def check_merged(profile: Profile) -> list[str]:
    """What only the merged profile shows: chapter 2's headline context among the attention sweep's decode
    contexts, and chapter 3's heads sharing their KV heads evenly."""
    where = display_path(profile.path)
    problems = []
    attention_params = profile.notebook_parameters("02_attention") if "02_attention" in notebook_stems() else {}
    if "attention_profile" in profile.values and attention_params:
        headline = attention_params.get("headline_context", notebook_defaults("02_attention").get("headline_context"))
        contexts = profile.section("attention_profile").get("decode_contexts")
        if contexts is not None and headline not in contexts:
            problems.append(f"{where}: notebooks.02_attention.headline_context: {headline} is not one of "
                            f"attention_profile.decode_contexts {contexts}")
    training = profile.notebook_parameters("03_training") if "03_training" in notebook_stems() else {}
    defaults = notebook_defaults("03_training") if training else {}
    n_heads, n_kv = (training.get(k, defaults.get(k)) for k in ("n_heads", "n_kv_heads"))
    if isinstance(n_heads, int) and isinstance(n_kv, int) and n_kv > 0 and (n_heads % n_kv or n_kv > n_heads):
        problems.append(f"{where}: notebooks.03_training.n_heads: {n_heads} query heads cannot share "
                        f"{n_kv} KV heads evenly (n_kv must divide n_h)")
    return problems


def load(name: str | Path) -> Profile:
    """A profile, validated as the library validates it and, in addition, its notebooks' parameters."""
    return profiles.load(name, file_checks=[check_file], merged_checks=[check_merged])
