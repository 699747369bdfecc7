"""`gqa cost` reads a Hugging Face config exactly, says what it assumes, and its table follows its options;
the cost, fit and plan path needs no torch; the wheel carries the paper's tables."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gqa.cli import main

ROOT = Path(__file__).resolve().parents[1]

# Published configurations (the config.json of each model on the Hugging Face Hub) and published totals.
PUBLISHED = {
    "llama-3.1-8b": ("LlamaConfig", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                         tie_word_embeddings=False, head_dim=128), 8_030_261_248),
    "mistral-7b-v0.3": ("MistralConfig", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                              num_attention_heads=32, num_key_value_heads=8, vocab_size=32768,
                                              tie_word_embeddings=False), 7_248_023_552),
    "qwen2.5-7b": ("Qwen2Config", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                       tie_word_embeddings=False), 7_615_616_512),
    "qwen3-8b": ("Qwen3Config", dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                                     tie_word_embeddings=False), 8_190_735_360),
    "qwen3-0.6b": ("Qwen3Config", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                       num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                                       tie_word_embeddings=True), 596_049_920),
}


def write_config(folder: Path, class_name: str, values: dict) -> Path:
    """A config.json written by transformers' own config class, as a model folder holds it."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    getattr(transformers, class_name)(**values).save_pretrained(str(folder))
    return folder


def cost_json(capsys, *argv) -> dict:
    assert main(["cost", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


@pytest.mark.parametrize("name", PUBLISHED)
def test_config_parameter_count_equals_the_real_model_on_the_meta_device(tmp_path, capsys, name):
    import torch
    import transformers

    class_name, values, published = PUBLISHED[name]
    folder = write_config(tmp_path / name, class_name, values)
    report = cost_json(capsys, "--config", str(folder), "--context", "8k")
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, class_name)(**values))
    real = sum(p.numel() for p in model.parameters())
    assert report["params"]["numel"] == real == published
    # the config file itself works as well as its folder
    again = cost_json(capsys, "--config", str(folder / "config.json"), "--context", "8k")
    assert again["params"] == report["params"]


@pytest.mark.parametrize("class_name, extra", [
    ("LlamaConfig", {}), ("Qwen2Config", {}), ("Qwen3Config", {"head_dim": 24}), ("MistralConfig", {}),
])
def test_config_kv_bytes_equal_the_cache_tensors_of_a_tiny_model(tmp_path, capsys, class_name, extra):
    import torch
    import transformers

    values = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=101, tie_word_embeddings=True, **extra)
    folder = write_config(tmp_path / class_name, class_name, values)
    tokens = 37
    report = cost_json(capsys, "--config", str(folder), "--context", str(tokens), "--dtype", "fp32")
    model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, class_name)(**values)).eval()
    assert report["params"]["numel"] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        cache = model(torch.arange(tokens)[None] % 101, use_cache=True).past_key_values
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert report["memory_bytes"]["kv_cache"] == measured


def test_what_a_config_leaves_out_is_said_and_mistral_has_no_biases(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "mistral", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 8, "vocab_size": 100, "attention_bias": True}))
    report = cost_json(capsys, "--config", str(folder), "--context", "1k")
    assert set(report["assumed"]) == {"num_key_value_heads", "head_dim", "tie_word_embeddings"}
    assert report["shape"]["qkv_bias"] is False and report["shape"]["o_bias"] is False


def test_unsupported_or_broken_configs_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 12}))
    (tmp_path / "broken.json").write_text("{not json")
    for path, message in ((tmp_path / "gpt2", "model_type 'gpt2' is not supported"),
                          (tmp_path / "broken.json", "not a readable JSON config"),
                          (tmp_path / "nowhere", "no such config.json")):
        assert main(["cost", "--config", str(path), "--context", "1k"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


# --- the four defects of the component table and the shape flags -------------------------------------


def test_component_table_follows_batch_and_params_convention(capsys):
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--context", "128k", "--batch", "8")
    rows = {c["name"]: c for c in report["components"]}
    assert rows["KV cache"]["memory_values"] == 2 * 8 * 131072 * 32 * 128 * 8  # 2·B·T·L·d_h·n_kv, by hand
    assert sum(c["memory_values"] for c in report["components"]) == report["memory_values"]["total"]
    assert sum(c["flops_per_token"] for c in report["components"]) == report["flops_per_token"]["total"]
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--context", "128k", "--params", "non_embedding")
    rows = {c["name"]: c for c in report["components"]}
    assert rows["input embedding"]["params"] == rows["output projection"]["flops_per_token"] == 0
    assert sum(c["memory_values"] for c in report["components"]) == report["memory_values"]["total"]
    assert sum(c["flops_per_token"] for c in report["components"]) == report["flops_per_token"]["total"]


def test_overridden_preset_is_renamed_and_keeps_its_kv_heads(capsys):
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--kv-heads", "4", "--context", "1k")
    assert report["shape"]["name"] == "llama-3.1-8b with n_kv=4"
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--heads", "16", "--context", "1k")
    assert (report["shape"]["n_heads"], report["shape"]["n_kv_heads"]) == (16, 8)  # not silently MHA
    assert main(["cost", "--preset", "llama-3.1-8b", "--heads", "12", "--context", "1k"]) == 2
    assert "give --kv-heads" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--alpha", "nan"), ("--beta", "inf"), ("--alpha", "-1"),
                                         ("--lambda", "1.5"), ("--beta", "0")])
def test_eq5_constants_must_be_finite_and_in_range(capsys, flag, value):
    assert main(["cost", "--preset", "llama-3.1-8b", "--context", "1k", flag, value]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_explicit_shape_says_what_it_assumed(capsys):
    report = cost_json(capsys, "--layers", "32", "--d-model", "4096", "--heads", "32", "--kv-heads", "8",
                       "--context", "128k")
    assert set(report["assumed"]) == {"head_dim", "vocab", "d_ff"}
    assert main(["cost", "--layers", "32", "--d-model", "4096", "--heads", "32", "--context", "1k"]) == 0
    out = capsys.readouterr().out
    assert "assumed head_dim: 64" in out and "assumed vocab: 50,304" in out and "assumed n_kv_heads" in out
    full = cost_json(capsys, "--layers", "2", "--d-model", "64", "--heads", "4", "--kv-heads", "2", "--head-dim", "16",
                     "--vocab", "100", "--ffn", "128", "--context", "1k")
    assert full["assumed"] == {}


# --- a light install ------------------------------------------------------------------------------------


def test_cost_fit_and_plan_load_no_torch():
    code = ("import sys\nfrom gqa import cost, scaling, search, fig2, shapes, paper\nfrom gqa.cli import main\n"
            "assert main(['plan', '--context', '128k', '--target-loss', '2.615', '--baseline', '32,8', '--json',"
            " '--resamples', '10']) == 0\n"
            "assert main(['cost', '--preset', 'llama-3.1-8b', '--context', '128k']) == 0\n"
            "assert main(['fit', '--resamples', '0']) == 0\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'matplotlib'))\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout


def test_a_missing_extra_is_named_not_a_traceback():
    from gqa.cli import describe_error

    for module, extra in (("torch", "models"), ("transformers.models", "models"), ("papermill", "book")):
        line = describe_error(ModuleNotFoundError(f"No module named {module!r}", name=module))[0]
        assert f"pip install 'gqa[{extra}]'" in line and module.split(".")[0] in line
    assert describe_error(KeyError("x"))[0].startswith("KeyError: 'x'")


@pytest.mark.slow
def test_the_wheel_carries_the_paper_tables_and_plans_without_a_checkout(tmp_path):
    import shutil

    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    source.mkdir()  # build from a copy, so setuptools' build/ folder never lands in the checkout
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "gqa", source / "gqa", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "paper", source / "data" / "paper")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                            str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("gqa-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for table in ("claims.csv", "fig2_points.csv", "table4.csv", "table9.csv"):
        assert f"gqa/paper_data/{table}" in names
    assert "gqa/kernels/decode_cpu.cpp" in names  # the CPU decode kernel's source, built on first use
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import gqa, gqa.paper\n"
            "assert gqa.__file__.startswith(sys.argv[1]), gqa.__file__\n"
            "from gqa.cli import main\n"
            "sys.exit(main(['plan', '--context', '128k', '--target-loss', '2.615', '--json', '--resamples', '0']))")
    proc = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["recommended"] == {"n_heads": 8, "n_kv_heads": 1, "head_dim": 64}
    kernel = ("import sys; sys.path.insert(0, sys.argv[1]); from gqa import cpu_decode\n"
              "assert cpu_decode.SOURCE.is_file() and cpu_decode.SOURCE.is_relative_to(sys.argv[1])\n"
              "print(cpu_decode.available(), cpu_decode.reason())")
    proc = subprocess.run([sys.executable, "-c", kernel, str(site)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "GQA_WORK_DIR": str(tmp_path / "work")})
    assert proc.returncode == 0 and proc.stdout.startswith("True"), proc.stdout + proc.stderr[-2000:]
