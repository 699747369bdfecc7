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
    # families beyond a Llama shape (totals hand-summed from the published configs; DeepSeek-V3's published
    # 685B includes a multi-token-prediction layer transformers does not build, so it has none here)
    "phi-3-mini-4k": ("Phi3Config", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32064,
                                         max_position_embeddings=4096, sliding_window=2047,
                                         tie_word_embeddings=False), 3_821_079_552),
    "phi-4-mini": ("Phi3Config", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                                      num_attention_heads=24, num_key_value_heads=8, vocab_size=200064,
                                      max_position_embeddings=131072, sliding_window=262144,
                                      partial_rotary_factor=0.75, tie_word_embeddings=True), 3_836_021_760),
    "granite-3.1-8b": ("GraniteConfig", dict(hidden_size=4096, intermediate_size=12800, num_hidden_layers=40,
                                             num_attention_heads=32, num_key_value_heads=8, vocab_size=49155,
                                             max_position_embeddings=131072, tie_word_embeddings=True),
                       8_170_848_256),
    "gemma-2-9b": ("Gemma2Config", dict(hidden_size=3584, intermediate_size=14336, num_hidden_layers=42,
                                        num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                                        vocab_size=256000, sliding_window=4096, max_position_embeddings=8192,
                                        tie_word_embeddings=True), 9_241_705_984),
    "gemma-3-1b": ("Gemma3TextConfig", dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                                            num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                                            vocab_size=262144, sliding_window=512, max_position_embeddings=32768,
                                            tie_word_embeddings=True), 999_885_952),
    "olmo-2-7b": ("Olmo2Config", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, vocab_size=100352,
                                      max_position_embeddings=4096, tie_word_embeddings=False), 7_298_617_344),
    "mixtral-8x7b": ("MixtralConfig", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                           num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
                                           num_local_experts=8, num_experts_per_tok=2, sliding_window=None,
                                           max_position_embeddings=32768, tie_word_embeddings=False),
                     46_702_792_704),
    "qwen1.5-moe-a2.7b": ("Qwen2MoeConfig", dict(hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                                                 shared_expert_intermediate_size=5632, num_experts=60,
                                                 num_experts_per_tok=4, num_hidden_layers=24, num_attention_heads=16,
                                                 num_key_value_heads=16, vocab_size=151936,
                                                 max_position_embeddings=8192, tie_word_embeddings=False),
                          14_315_784_192),
    "qwen3-30b-a3b": ("Qwen3MoeConfig", dict(hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768,
                                             num_experts=128, num_experts_per_tok=8, num_hidden_layers=48,
                                             num_attention_heads=32, num_key_value_heads=4, head_dim=128,
                                             vocab_size=151936, max_position_embeddings=40960,
                                             tie_word_embeddings=False), 30_532_122_624),
    "deepseek-v2-lite": ("DeepseekV2Config", dict(hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408,
                                                  num_hidden_layers=27, num_attention_heads=16, num_key_value_heads=16,
                                                  n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6,
                                                  first_k_dense_replace=1, kv_lora_rank=512, q_lora_rank=None,
                                                  qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
                                                  vocab_size=102400, max_position_embeddings=163840,
                                                  tie_word_embeddings=False), 15_706_484_224),
    "deepseek-v3": ("DeepseekV3Config", dict(hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
                                             num_hidden_layers=61, num_attention_heads=128, num_key_value_heads=128,
                                             n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8,
                                             first_k_dense_replace=3, n_group=8, topk_group=4, kv_lora_rank=512,
                                             q_lora_rank=1536, qk_nope_head_dim=128, qk_rope_head_dim=64,
                                             v_head_dim=128, vocab_size=129280, max_position_embeddings=163840,
                                             tie_word_embeddings=False), None),
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
    assert report["params"]["numel"] == real
    assert published is None or real == published
    # active: a routed expert's weights count k/E (every mixture here fuses its experts in one tensor)
    experts = report["model"]["experts"]
    share = experts["per_token"] / experts["routed"] if experts else 1
    active = sum(p.numel() * (share if ".experts." in name else 1) for name, p in model.named_parameters())
    norms = sum(p.numel() for name, p in model.named_parameters() if "norm" in name)
    assert report["params"]["active"] + report["params"]["norms"] == active and report["params"]["norms"] == norms
    lookup = 0 if values["tie_word_embeddings"] else values["vocab_size"] * values["hidden_size"]
    assert report["params"]["active_matmul"] == report["params"]["active"] - lookup  # DeepSeek's "activated"
    # the config file itself works as well as its folder
    again = cost_json(capsys, "--config", str(folder / "config.json"), "--context", "8k")
    assert again["params"] == report["params"]


TINY_MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
TINY_MLA = dict(num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
                n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8,
                qk_nope_head_dim=8, v_head_dim=8)


@pytest.mark.parametrize("class_name, extra", [
    ("LlamaConfig", {}), ("Qwen2Config", {}), ("Qwen3Config", {"head_dim": 24}),
    ("MistralConfig", {"sliding_window": None}), ("MistralConfig", {"sliding_window": 8}),
    ("Phi3Config", {"sliding_window": 9}), ("GraniteConfig", {}), ("Olmo2Config", {}),
    ("Gemma2Config", {"sliding_window": 8, "head_dim": 16}),
    ("Gemma3TextConfig", {"sliding_window": 8, "head_dim": 16, "num_hidden_layers": 7}),
    ("MixtralConfig", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    ("Qwen2MoeConfig", {**TINY_MOE, "shared_expert_intermediate_size": 40}),
    ("Qwen3MoeConfig", TINY_MOE),
    ("DeepseekV2Config", TINY_MLA), ("DeepseekV3Config", {**TINY_MLA, "n_group": 1, "topk_group": 1}),
])
def test_config_kv_bytes_equal_the_cache_tensors_of_a_tiny_model(tmp_path, capsys, class_name, extra):
    """The cache transformers fills, tensor by tensor, against `gqa cost`: exactly for full layers; a
    sliding-window layer of window W holds W − 1 tokens between steps in transformers (the next token makes
    W, the window a serving engine allocates and `gqa cost` counts); MLA models hold the compressed latent
    (transformers and serving engines alike), the per-head K and V being the named alternative `expanded`."""
    import torch
    import transformers

    values = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=101, tie_word_embeddings=True, pad_token_id=0,
                  bos_token_id=1, eos_token_id=2, max_position_embeddings=256)
    values.update(extra)
    folder = write_config(tmp_path / class_name, class_name, values)
    tokens = 37
    report = cost_json(capsys, "--config", str(folder), "--context", str(tokens), "--dtype", "fp32")
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, class_name)(**values)).eval()
    assert report["params"]["numel"] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        past = model(torch.arange(tokens)[None] % 101, use_cache=True).past_key_values
    measured = sum(t.numel() * t.element_size() for layer in past.layers for t in (layer.keys, layer.values))
    windows = report["model"]["windows"]
    assert len(past.layers) == len(windows)
    per_token = report["memory_bytes"]["kv_cache"] / sum(tokens if w is None else min(tokens, w) for w in windows)
    kept_one_fewer = sum(w is not None and tokens >= w for w in windows)  # transformers' W − 1
    assert measured == report["memory_bytes"]["kv_cache"] - kept_one_fewer * per_token
    if any(windows):  # the windows bind: less than a full cache of every layer
        assert kept_one_fewer and measured < tokens * len(windows) * per_token
    if "Deepseek" in class_name:  # the latent is the down-projection's output; expanded: n_h·(d_nope + d_rope + d_v)
        attn = model.model.layers[0].self_attn
        assert measured == 4 * tokens * len(windows) * attn.kv_a_proj_with_mqa.out_features
        assert report["alternative_cache"] == {"name": "expanded", "kv_cache_bytes": 4 * tokens * 2 * 4 * (8 + 8 + 8)}


def test_what_a_config_leaves_out_is_said_and_mistral_has_no_biases(tmp_path, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "mistral", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 8, "vocab_size": 100, "attention_bias": True}))
    report = cost_json(capsys, "--config", str(folder), "--context", "1k")
    assert set(report["assumed"]) == {"num_key_value_heads", "head_dim", "tie_word_embeddings", "sliding_window",
                                      "max_position_embeddings"}
    assert "4096" in report["assumed"]["sliding_window"]  # MistralConfig's default: every layer slides
    assert report["model"]["windows"] == [4096, 4096] and report["shape"] is None
    rows = {c["name"]: c["params"] for c in report["components"]}
    assert rows["attention projections"] == 2 * 2 * 64 * 8 * (8 + 8)  # 2·L·d·d_h·(n_h + n_kv): no biases


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


def test_a_sliding_window_caps_the_cache_and_a_long_context_is_warned(tmp_path, capsys):
    """Mistral-7B-v0.1 (sliding_window 4,096) at 128K: 32 layers x 4,096 tokens x 2·8·128 values x 2 bytes
    = 0.54 GB, where a cache of every token would hold 17.18 GB; beyond max_position_embeddings a warning."""
    values = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000, sliding_window=4096, max_position_embeddings=32768,
                  tie_word_embeddings=False)
    folder = write_config(tmp_path / "mistral-7b-v0.1", "MistralConfig", values)
    report = cost_json(capsys, "--config", str(folder), "--context", "128k")
    assert report["memory_bytes"]["kv_cache"] == 32 * 4096 * 2 * 8 * 128 * 2 == 536_870_912
    assert report["shape"] is None and report["model"]["windows"] == [4096] * 32
    assert report["warnings"] == ["context 128K (131,072 tokens) is beyond the model's max_position_embeddings "
                                  "= 32,768: it was not built for it"]
    assert main(["cost", "--config", str(folder), "--context", "128k"]) == 0
    out = capsys.readouterr().out
    assert "warning: context 128K" in out and "32 of 32 layers keep the last 4,096 tokens" in out
    assert cost_json(capsys, "--config", str(folder), "--context", "32k")["warnings"] == []
    # every layer slides: the cache stops growing, so every context fits a large enough memory
    report = cost_json(capsys, "--config", str(folder), "--context", "1k", "--memory", "16")
    assert report["memory_budget"]["max_context"] is None and report["memory_budget"]["fits"]


def test_presets_warn_beyond_their_published_context_and_memory_answers_say_so(capsys):
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--context", "1m")
    assert report["warnings"] and "max_position_embeddings = 131,072" in report["warnings"][0]
    assert cost_json(capsys, "--preset", "paper-1.2b", "--context", "1m")["warnings"] == []  # no published limit
    m = cost_json(capsys, "--preset", "llama-3.2-1b", "--context", "8k", "--hardware", "h200")["memory_budget"]
    assert m["max_context"] > 131072 and m["max_context_within_model"] == 131072
    assert main(["cost", "--preset", "llama-3.2-1b", "--context", "8k", "--hardware", "h200", "--max-context"]) == 0
    assert "beyond the model's max_position_embeddings = 131,072" in capsys.readouterr().out.splitlines()[0]


def test_a_config_without_its_core_fields_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    assert main(["cost", "--config", str(tmp_path), "--context", "1k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "num_hidden_layers, num_attention_heads, vocab_size missing" in err


def test_hardware_flags_answer_prefill_decode_and_the_inverse_questions(capsys):
    """Llama-3.1-8B in bf16 with 24 GB, 1 TB/s and 100 TFLOP/s given by hand: the inverse questions and the
    prefill FLOPs from its Table 2 counts (weights 2·N_total bytes; norms are not held in Table 2's N)."""
    from gqa.shapes import get_preset

    counts = get_preset("llama-3.1-8b").params()
    per_token = 2 * 32 * 8 * 128 * 2  # bytes of K and V a token adds: 2·L·n_kv·d_h, bf16
    report = cost_json(capsys, "--preset", "llama-3.1-8b", "--context", "8k", "--bandwidth", "1000",
                       "--peak-flops", "100", "--memory", "24", "--efficiency", "0.5")
    m, d = report["memory_budget"], report["roofline"]
    assert m["max_context"] == (24e9 - 2 * counts.total) // per_token
    assert m["max_batch"] == (24e9 - 2 * counts.total) // (8192 * per_token)
    assert d["hardware"] == "custom" and d["decode"]["efficiency"] == 0.5
    assert d["decode"]["s"] == pytest.approx(2 * d["decode"]["ideal_s"])
    # decode: a token's time is the step's; prefill: a prompt token's share of the prefill
    assert d["decode"]["s_per_token"] == d["decode"]["s"]
    assert d["decode"]["tokens_per_s_per_sequence"] == 1 / d["decode"]["s"]
    assert d["prefill"]["s_per_token"] == pytest.approx(d["prefill"]["s"] / 8192)
    matmul = counts.total - counts.embedding  # the untied input embedding is a lookup
    assert d["prefill"]["flops"] == pytest.approx(2 * matmul * 8192 + 4 * 32 * 32 * 128 * 8192 * 8193 / 2)
    assert main(["cost", "--preset", "llama-3.1-8b", "--context", "8k", "--hardware", "rtx-4090", "--max-context",
                 "--max-batch"]) == 0
    first = capsys.readouterr().out.splitlines()[:2]
    assert first[0].startswith("max context at batch 1 in 24.0 GB: ") and first[1].startswith("max batch at 8K")


@pytest.mark.parametrize("argv, message", [
    (["--preset", "llama-3.1-8b", "--max-context"], "need a memory budget"),
    (["--preset", "llama-3.1-8b", "--bandwidth", "1000"], "--bandwidth and --peak-flops"),
    (["--preset", "llama-3.1-8b", "--hardware", "h100", "--efficiency", "1.5"], "--efficiency must lie in (0, 1]"),
    (["--preset", "llama-3.1-8b", "--memory", "-3"], "must be a positive number"),
    (["--preset", "llama-3.1-8b", "--cache", "expanded"], "--cache: cache 'expanded'"),
])
def test_bad_hardware_flags_are_one_line_errors(capsys, argv, message):
    assert main(["cost", *argv, "--context", "8k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_families_beyond_a_shape_refuse_what_ifs_and_plans_by_name(tmp_path, capsys):
    values = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=101, sliding_window=8, head_dim=16)
    folder = write_config(tmp_path / "g", "Gemma2Config", values)
    assert main(["cost", "--config", str(folder), "--context", "1k", "--kv-heads", "1"]) == 2
    assert ("--kv-heads: shape what-ifs need a plain Llama-style shape, which this gemma2 config is not: its layers "
            "carry norms" in capsys.readouterr().err)
    assert main(["plan", "--baseline-config", str(folder), "--context", "1k", "--target-loss", "2.6"]) == 2
    assert "gemma2" in capsys.readouterr().err
    bad = write_config(tmp_path / "m", "MixtralConfig", dict(values, num_local_experts=2, num_experts_per_tok=2))
    config = json.loads((bad / "config.json").read_text())
    config["num_experts_per_tok"] = 3
    (bad / "config.json").write_text(json.dumps(config))
    assert main(["cost", "--config", str(bad), "--context", "1k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "num_experts_per_tok = 3 must lie in [1, 2]" in err


def test_config_reading_needs_transformers_but_not_torch(tmp_path):
    values = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=101, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
    folder = write_config(tmp_path / "q", "Qwen3MoeConfig", values)
    code = ("import sys\nsys.modules['torch'] = None  # importing torch now fails\n"
            "from gqa.cli import main\nassert main(['cost', '--config', sys.argv[1], '--context', '1k']) == 0\n")
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 experts, 2 per token" in proc.stdout


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


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.slow
def test_the_wheel_installed_anywhere_plans_and_never_writes_into_its_install_folder(tmp_path):
    """Build the core wheel, install it with --target, run readings, plan and cost from another folder: the
    caches go to the user's folders (XDG), the install folder is left as it was, and `gqa book` says in one
    line that it needs a checkout."""
    import shutil
    import zipfile

    wheels, site, source, elsewhere = (tmp_path / n for n in ("wheels", "site", "source", "elsewhere"))
    source.mkdir()  # build from a copy, so setuptools' build/ folder never lands in the checkout
    elsewhere.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "gqa", source / "gqa", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "paper", source / "data" / "paper")
    shutil.copytree(ROOT / "notebooks" / "params", source / "notebooks" / "params")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                            str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("gqa-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for table in ("claims.csv", "fig2_points.csv", "table4.csv", "table9.csv", "readings.yaml"):
        assert f"gqa/paper_data/{table}" in names
    assert "gqa/profile_data/cpu.yaml" in names and "gqa/kernels/decode_cpu.cpp" in names
    assert not [n for n in names if n.startswith("gqa_book")]  # the book's machinery is not in the wheel
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    before = _snapshot(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GQA_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg-cache"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))

    def gqa(*argv: str) -> subprocess.CompletedProcess:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import gqa\n"
                "assert gqa.__file__.startswith(sys.argv[1]), gqa.__file__\n"
                "from gqa.cli import main; sys.exit(main(sys.argv[2:]))")
        return subprocess.run([sys.executable, "-c", code, str(site), *argv], capture_output=True, text=True,
                              cwd=elsewhere, env=env)

    proc = gqa("plan", "--context", "128k", "--target-loss", "2.615", "--json", "--resamples", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["recommended"] == {"n_heads": 8, "n_kv_heads": 1, "head_dim": 64}
    proc = gqa("readings", "--json", "--resamples", "5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["readings"] and list((tmp_path / "xdg-cache" / "gqa" / "readings").glob("*.json"))
    assert gqa("cost", "--preset", "llama-3.1-8b", "--context", "32k").returncode == 0
    proc = gqa("sweep", "--profile", "ci", "--dry-run")  # the packaged profiles, no notebooks parsed
    assert proc.returncode == 0 and "runs" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    proc = gqa("book", "--profile", "ci")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "checkout" in lines[0], proc.stderr
    kernel = ("import sys; sys.path.insert(0, sys.argv[1]); from gqa import cpu_decode\n"
              "assert cpu_decode.SOURCE.is_file() and cpu_decode.SOURCE.is_relative_to(sys.argv[1])\n"
              "print(cpu_decode.available(), cpu_decode.reason())")
    proc = subprocess.run([sys.executable, "-c", kernel, str(site)], capture_output=True, text=True, cwd=elsewhere,
                          env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("True"), proc.stdout + proc.stderr[-2000:]
    assert (tmp_path / "xdg-cache" / "gqa" / "kernels").exists() or list((tmp_path / "xdg-cache").rglob("*.so"))
    assert _snapshot(site) == before, "an installed gqa wrote inside its install folder"
    assert not list(elsewhere.iterdir())  # nor into the folder it ran from


def test_every_example_in_cost_help_runs(capsys):
    """The examples `gqa cost --help` shows, run verbatim (the config example on a config written here)."""
    import shlex

    from gqa.cli.cost import COST_EPILOG

    examples = [line.strip() for line in COST_EPILOG.splitlines() if line.strip().startswith("gqa cost ")]
    assert len(examples) >= 6
    for line in examples:
        argv = shlex.split(line)[1:]
        if "--config" in argv:
            continue  # path/to/model is a placeholder; the config path is tested above
        assert main(argv) == 0, line
        capsys.readouterr()
