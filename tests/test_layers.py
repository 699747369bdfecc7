"""The package's layers, read from the source (every import, function-level ones included).

  method        the paper's cost model, fits and search: numbers in, numbers out (no torch, no files)
  paper/data    the paper's tables and checks, settings, profiles, corpora and run stores (no torch)
  ML stack      models, attention backends, training, sweeps, and the machine they run on
  measurement   the checks and benchmarks that run the ML stack against the cost model
  cli           one module per command
  gqa_book      the book's machinery (booktools/), which the library never imports
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHOD = {"units", "values", "shapes", "cost", "architecture", "hardware", "scaling", "search", "regimes",
          "study_limits", "head_law", "optimum_words",
          "fits_words"}
PAPER_AND_DATA = {"paths", "paper", "digitise", "figure1", "fig2", "fig2_words", "readings", "readings_words",
                  "sources", "config", "data", "profiles", "runs", "study", "pilot", "effect", "hf_config",
                  "exercises"}
ML_STACK = {"attention", "cpu_decode", "model", "train", "sweep", "machine"}
MEASUREMENT = {"profiling", "checks", "benchmarks", "real_models", "gpu_check", "attention_words"}
ML_PACKAGES = {"torch", "transformers", "tokenizers", "safetensors", "flash_attn", "submitit"}
TORCH = {"torch", "safetensors", "flash_attn"}


def _modules() -> dict[str, Path]:
    found = {}
    for base, package in ((ROOT, "gqa"), (ROOT / "booktools", "gqa_book")):
        for path in (base / package).rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every module `name` imports, at the top or inside a function: the longest known module name of each."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # `from .paths import X` in gqa/cpu_decode.py is gqa.paths
                package = name.split(".") if MODULES[name].name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            out.add(target if target in MODULES or not target.startswith("gqa") else target.rsplit(".", 1)[0])
    return out - {name, "gqa", "gqa_book"}  # `from gqa import cost` imports gqa.cost


def _short(module: str) -> str:
    return module.removeprefix("gqa.")


def test_every_module_of_the_library_has_a_layer():
    library = {_short(m) for m in MODULES if m.startswith("gqa.") and not m.startswith(("gqa.cli", "gqa_book"))}
    assert library - {"kernels"} == METHOD | PAPER_AND_DATA | ML_STACK | MEASUREMENT


@pytest.mark.parametrize("module", sorted(f"gqa.{m}" for m in METHOD))
def test_the_method_imports_only_the_method(module):
    outside = {i for i in _imports(module) if i.startswith("gqa") and _short(i) not in METHOD}
    assert not outside, f"{module} imports {outside}"
    assert not {i.split(".")[0] for i in _imports(module)} & (ML_PACKAGES | {"yaml"})


@pytest.mark.parametrize("module", sorted(f"gqa.{m}" for m in METHOD | PAPER_AND_DATA))
def test_the_method_paper_and_data_never_import_the_ml_stack_or_torch(module):
    imported = _imports(module)
    assert not {_short(i) for i in imported} & (ML_STACK | MEASUREMENT), module
    assert not {i.split(".")[0] for i in imported} & TORCH, module  # (hf_config: transformers' config classes)


LAYERS = [METHOD, PAPER_AND_DATA, ML_STACK, MEASUREMENT]  # each may import only its own layer and those before


def _layer(module: str) -> int:
    short = _short(module)
    if short == "cli" or short.startswith("cli."):
        return len(LAYERS)
    return next(i for i, layer in enumerate(LAYERS) if short in layer)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("gqa.") and _short(m) != "kernels"))
def test_no_module_imports_a_later_layer(module):
    later = {i for i in _imports(module) if i.startswith("gqa.") and _short(i) != "kernels"
             and _layer(i) > _layer(module)}
    assert not later, f"{module} (layer {_layer(module)}) imports {later}"


def test_relative_imports_are_read():
    assert "gqa.paths" in _imports("gqa.cpu_decode")


def test_nothing_in_the_library_imports_the_book_machinery():
    offenders = {m: i for m in MODULES if m.startswith("gqa.") or m == "gqa"
                 for i in _imports(m) if i.split(".")[0] == "gqa_book"}
    assert not offenders


def _graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (a package's `__init__` importing its own submodules is no cycle)."""
    return {m: {i for i in _imports(m) if i in MODULES and not m.startswith(f"{i}.")} for m in MODULES}


def test_no_import_cycles_lazy_ones_included():
    graph, cycles = _graph(), []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
