"""An `Architecture` (and a `Shape` where the model is one) from a Hugging Face model's configuration.

`gqa cost --config PATH` and `gqa plan --baseline-config PATH` take a `config.json` or a local model
folder. The file is read by `transformers.AutoConfig` with `local_files_only=True`: nothing is
downloaded, and transformers' configuration classes need no torch (`pip install 'gqa[hf]'`). Families,
and what each adds to a plain Llama shape (the parameter count of each equals that of the model
transformers builds from the same config; tests/test_hf_config.py checks one published config each):

  llama, granite  attention_bias (Q, K, V and O), mlp_bias, head_dim when given
  mistral         head_dim when given; sliding_window (every layer keeps the last W tokens)
  phi3            fused QKV and gate-up matrices (the same count); sliding_window
  qwen2, qwen3    Q, K, V biases (qwen2) or per-head Q/K norms (qwen3); sliding windows from layer_types
  olmo2           Q/K norms over the whole projection (n_h·d_h and n_kv·d_h gains), norms after blocks
  gemma2, gemma3_text  four norms per layer, head_dim 256 by default, per-head Q/K norms (gemma3),
                  local layers with a sliding window beside global ones (layer_types)
  mixtral, qwen2_moe, qwen3_moe  mixtures of experts: router, experts, shared expert (qwen2_moe)
  deepseek_v2, deepseek_v3  multi-head latent attention (MLA): the cache holds the compressed latent
                  (kv_lora_rank + qk_rope_head_dim per token and layer), as transformers' cache and serving
                  engines do; the per-head K and V are the named alternative cache "expanded"; the
                  first_k_dense_replace layers are dense, the rest mixtures with shared experts

Every other `model_type` is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gqa.architecture import Architecture, Experts, LayerAttention
from gqa.shapes import Shape

SUPPORTED = ("llama", "granite", "mistral", "phi3", "qwen2", "qwen3", "olmo2", "gemma2", "gemma3_text",
             "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3")
GQA_LIKE = ("llama", "granite", "mistral", "phi3", "qwen2", "qwen3")  # a Shape unless a window applies
MOE = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3")
MLA = ("deepseek_v2", "deepseek_v3")
CORE_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")  # refused when missing


def _config_folder(path: Path) -> Path:
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: a model folder needs a config.json")
        return path
    if path.is_file():
        return path
    raise ValueError(f"{path}: no such config.json or model folder")


def read_config(path: str | Path):
    """(transformers config object, the raw JSON) of a local config.json or model folder (never downloads)."""
    path = _config_folder(Path(path).expanduser())
    config_file = path / "config.json" if path.is_dir() else path
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_file}: not a readable JSON config ({e})") from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise ValueError(f"{config_file}: no `model_type`; is this a Hugging Face config.json?")
    if raw["model_type"] not in SUPPORTED:
        raise ValueError(f"{config_file}: model_type {raw['model_type']!r} is not supported; supported: "
                         f"{', '.join(SUPPORTED)}")
    missing = [key for key in CORE_FIELDS if key not in raw]
    if missing:
        raise ValueError(f"{config_file}: {', '.join(missing)} missing; a config.json of a released model has them "
                         "(transformers would fill in a default model's values)")
    # read as given, before transformers fills or rejects them
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                "intermediate_size", "vocab_size", "moe_intermediate_size", "shared_expert_intermediate_size",
                "num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok", "kv_lora_rank",
                "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "max_position_embeddings"):
        value = raw.get(key)
        if key in raw and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{config_file}: {key} must be a positive whole number, got {value!r}")
    try:
        from transformers import AutoConfig
    except ImportError:
        raise RuntimeError("reading a Hugging Face config needs transformers (no torch): "
                           "pip install 'gqa[hf]'") from None
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True), raw
    except Exception as e:  # noqa: BLE001 -- transformers' validation errors have their own classes
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{config_file}: transformers cannot read it ({first})") from None



@dataclass(frozen=True)
class ConfigModel:
    """What a config describes: its Architecture, its Shape when it is one (a Llama-style model with no
    window inside its context), what the file left out and the tool assumed, and where it came from."""

    architecture: Architecture
    shape: Shape | None
    assumed: dict[str, str]
    source: Path
    not_a_shape: str = ""  # why `shape` is None: what a Llama shape cannot describe


def _model_name(config, path: Path) -> str:
    name = getattr(config, "_name_or_path", "") or ""
    name = Path(name).name if name else ""
    if name.endswith(".json") or not name:  # a file given directly: the model is its folder
        name = (path if path.is_dir() else path.resolve().parent).name
    return name


def _windows(config, kind: str, layers: int) -> list[int | None]:
    """Each layer's sliding window, by transformers' own rule (cache_utils.get_layer_types_and_kwargs):
    `layer_types` when the config has them, else every layer slides when `sliding_window` is set."""
    window = getattr(config, "sliding_window", None) or None  # Qwen2-MoE writes 0 for "none"
    types = getattr(config, "layer_types", None)
    if types is not None:
        if len(types) != layers:
            raise ValueError(f"layer_types has {len(types)} entries for {layers} layers")
        unknown = sorted(set(types) - {"full_attention", "sliding_attention"})
        if unknown:
            raise ValueError(f"layer_types {', '.join(unknown)} are not costed (full_attention, sliding_attention)")
        if "sliding_attention" in types and window is None:
            raise ValueError("layer_types has sliding_attention layers but sliding_window is not set")
        return [window if t == "sliding_attention" else None for t in types]
    return [window] * layers


def _dense_ffn(config, width: int, d: int) -> int:
    bias = bool(getattr(config, "mlp_bias", False))
    return 3 * d * width + (2 * width + d if bias else 0)


def _ffns(config, kind: str, d: int, layers: int) -> tuple[int, int, int, Experts | None]:
    """(FFN parameters of every layer, those one token runs, router parameters, the mixture) of a family."""
    dense = _dense_ffn(config, int(config.intermediate_size), d)
    if kind not in MOE:
        return layers * dense, layers * dense, 0, None
    if kind == "mixtral":
        routed, moe_layers, expert_width, shared_width = int(config.num_local_experts), list(range(layers)), \
            int(config.intermediate_size), 0
    elif kind in ("qwen2_moe", "qwen3_moe"):
        routed, step = int(config.num_experts), int(config.decoder_sparse_step)
        only_mlp = set(config.mlp_only_layers or [])
        moe_layers = [i for i in range(layers) if i not in only_mlp and routed > 0 and (i + 1) % step == 0]
        expert_width = int(config.moe_intermediate_size)
        shared_width = int(getattr(config, "shared_expert_intermediate_size", 0) or 0) if kind == "qwen2_moe" else 0
    else:  # deepseek: the first first_k_dense_replace layers are dense
        routed = int(config.n_routed_experts)
        moe_layers = list(range(int(config.first_k_dense_replace), layers))
        expert_width = int(config.moe_intermediate_size)
        shared_width = expert_width * int(config.n_shared_experts or 0)
    per_token = int(config.num_experts_per_tok)
    if not 1 <= per_token <= routed:
        raise ValueError(f"num_experts_per_tok = {per_token} must lie in [1, {routed}] (the routed experts)")
    expert = 3 * d * expert_width
    shared = 3 * d * shared_width
    dense_layers = layers - len(moe_layers)
    total = dense_layers * dense + len(moe_layers) * (routed * expert + shared)
    active = dense_layers * dense + len(moe_layers) * (per_token * expert + shared)
    router = len(moe_layers) * (routed * d + (d if kind == "qwen2_moe" and shared_width else 0))
    n_shared = 1 if kind == "qwen2_moe" and shared_width else int(getattr(config, "n_shared_experts", 0) or 0)
    return total, active, router, Experts(routed, per_token, len(moe_layers), n_shared if kind in MLA or
                                          kind == "qwen2_moe" else 0)


def _gqa_attention(config, kind: str, d: int, n_heads: int, n_kv: int, head_dim: int) -> tuple[int, int]:
    """(projection parameters, norm gains) of one GQA layer's attention."""
    q, kv = n_heads * head_dim, n_kv * head_dim
    params = d * q + 2 * d * kv + q * d
    if kind in ("qwen2", "qwen2_moe"):  # Q, K and V biases always, none on O
        params += q + 2 * kv
    elif kind not in ("mistral", "phi3", "mixtral") and getattr(config, "attention_bias", False):
        params += q + 2 * kv + d
    if kind in ("qwen3", "qwen3_moe", "gemma3_text"):
        norms = 2 * head_dim
    elif kind == "olmo2":
        norms = q + kv
    else:
        norms = 0
    return params, norms


def _mla(config, d: int, n_heads: int) -> tuple[int, int, LayerAttention, LayerAttention]:
    """(projection parameters, norm gains, latent-cache layer, expanded-cache layer) of one MLA layer."""
    rope, nope, v = int(config.qk_rope_head_dim), int(config.qk_nope_head_dim), int(config.v_head_dim)
    latent, q_rank = int(config.kv_lora_rank), config.q_lora_rank
    bias = bool(getattr(config, "attention_bias", False))
    qk = nope + rope
    if q_rank:
        q_params, norms = d * int(q_rank) + (int(q_rank) if bias else 0) + int(q_rank) * n_heads * qk, int(q_rank)
    else:
        q_params, norms = d * n_heads * qk, 0
    params = (q_params + d * (latent + rope) + (latent + rope if bias else 0) + latent * n_heads * (nope + v)
              + n_heads * v * d + (d if bias else 0))
    # served (absorbed): scores over the latent and the shared rope key, values from the latent
    served = LayerAttention(n_heads, latent + rope, latent + rope, latent)
    expanded = LayerAttention(n_heads, n_heads * (qk + v), qk, v)  # per-head K and V, decompressed
    return params, norms + latent, served, expanded


def model_from_config(path: str | Path) -> ConfigModel:
    """The model a local Hugging Face config describes (see the module doc for the families)."""
    config, raw = read_config(path)
    path = Path(path).expanduser()
    where = path / "config.json" if path.is_dir() else path
    kind = config.model_type
    layers, d = int(config.num_hidden_layers), int(config.hidden_size)
    n_heads = int(config.num_attention_heads)
    n_kv = int(getattr(config, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(config, "head_dim", None) or d // n_heads)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    vocab = int(config.vocab_size)
    max_position = getattr(config, "max_position_embeddings", None) if "max_position_embeddings" in raw else None
    try:
        if kind not in MLA and n_heads % n_kv:
            raise ValueError(f"num_attention_heads = {n_heads} is not a multiple of num_key_value_heads = {n_kv}")
        if kind not in ("llama", "granite") and getattr(config, "mlp_bias", False):
            raise ValueError(f"mlp_bias = true is not costed for {kind}")
        windows = _windows(config, kind, layers) if kind not in MLA else [None] * layers
        ffn, ffn_active, router, experts = _ffns(config, kind, d, layers)
        alternative = None
        if kind in MLA:
            per_layer, qk_norms, served, expanded = _mla(config, d, n_heads)
            layer_list = (served,) * layers
            alternative = ("expanded", (expanded,) * layers)
        else:
            per_layer, qk_norms = _gqa_attention(config, kind, d, n_heads, n_kv, head_dim)
            layer_list = tuple(LayerAttention(n_heads, 2 * n_kv * head_dim, head_dim, head_dim, window)
                               for window in windows)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from None
    layer_norms = 4 if kind in ("gemma2", "gemma3_text") else 2
    architecture = Architecture(
        name=_model_name(config, path), family=kind, d_model=d, vocab=vocab, tied=tied, layers=layer_list,
        attention=layers * per_layer, ffn=ffn, ffn_active=ffn_active, router=router,
        norms=layers * (layer_norms * d + qk_norms) + d, experts=experts,
        max_position=int(max_position) if max_position else None, alternative_cache=alternative,
        notes=("transformers builds no multi-token-prediction layer: published totals that include it are "
               "larger",) if kind == "deepseek_v3" and getattr(config, "num_nextn_predict_layers", 0) else ())
    shape, why = _as_shape(config, kind, architecture, n_kv, head_dim)
    return ConfigModel(architecture, shape, _assumed(config, raw, kind, architecture, n_kv, head_dim), where, why)


def _as_shape(config, kind: str, architecture: Architecture, n_kv: int, head_dim: int) -> tuple[Shape | None, str]:
    """(the paper's Shape of a Llama-style model whose windows never bind inside its context, "") or
    (None, why it is not one)."""
    limit = architecture.max_position
    binding = sorted({w for w in architecture.windows if w is not None and (limit is None or w < limit)})
    if kind in MLA:
        return None, "its attention is multi-head latent attention (MLA)"
    if kind in MOE:
        return None, "its FFNs are mixtures of experts"
    if kind not in GQA_LIKE:
        return None, f"its layers carry norms a Llama layer does not ({kind})"
    if binding:
        return None, (f"its sliding window of {'/'.join(map(str, binding))} tokens is shorter than the "
                      + (f"{limit:,} tokens it was built for" if limit else "contexts it may serve"))
    if getattr(config, "mlp_bias", False):
        return None, "its FFNs have biases (mlp_bias)"
    bias = kind in ("llama", "granite", "qwen3") and bool(getattr(config, "attention_bias", False))
    layer = architecture.layers[0]
    return Shape(layers=len(architecture.layers), d_model=architecture.d_model, n_heads=layer.n_heads,
                 n_kv_heads=n_kv, head_dim=head_dim, d_ff=int(config.intermediate_size), vocab=architecture.vocab,
                 tied=architecture.tied, qkv_bias=bias or kind == "qwen2", o_bias=bias, qk_norm=kind == "qwen3",
                 name=architecture.name or f"{kind} config"), ""


# The fields each family's count reads; any the file leaves out is filled by transformers and said.
_READ = {
    "common": ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "tie_word_embeddings",
               "intermediate_size", "max_position_embeddings"),
    "gqa": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "window": ("sliding_window",),
    "moe": ("num_experts_per_tok",),
    "mixtral": ("num_local_experts",),
    "qwen_moe": ("num_experts", "moe_intermediate_size", "decoder_sparse_step", "mlp_only_layers"),
    "qwen2_moe": ("shared_expert_intermediate_size",),
    "deepseek": ("n_routed_experts", "n_shared_experts", "moe_intermediate_size", "first_k_dense_replace",
                 "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"),
}


def _read_fields(kind: str) -> tuple[str, ...]:
    groups = ["common"]
    groups += ["gqa"] if kind not in MLA else []
    groups += ["head_dim"] if kind in ("llama", "mistral", "qwen3", "qwen3_moe", "gemma2", "gemma3_text") else []
    groups += ["window"] if kind in ("mistral", "phi3", "mixtral", "gemma2", "gemma3_text") else []
    groups += ["moe"] if kind in MOE else []
    groups += ["mixtral"] if kind == "mixtral" else []
    groups += ["qwen_moe"] if kind in ("qwen2_moe", "qwen3_moe") else []
    groups += ["qwen2_moe"] if kind == "qwen2_moe" else []
    groups += ["deepseek"] if kind in MLA else []
    return tuple(key for group in groups for key in _READ[group])


def _assumed(config, raw: dict, kind: str, architecture: Architecture, n_kv: int, head_dim: int) -> dict[str, str]:
    """{field: what was taken} for every field the count reads that the file leaves out."""
    derived = {"num_key_value_heads": f"{n_kv} (= num_attention_heads, transformers' default)",
               "head_dim": f"{head_dim} (" + ("hidden_size / heads" if head_dim * architecture.layers[0].n_heads
                                              == architecture.d_model else f"transformers' default for {kind}") + ")",
               "max_position_embeddings": "the context the model was built for is unknown (no warning beyond it)",
               "tie_word_embeddings": f"{'tied' if architecture.tied else 'untied'} (transformers' default)"}
    notes = {}
    for key in _read_fields(kind):
        if key in raw:
            continue
        value = getattr(config, key, None)
        notes[key] = "not in the config: " + derived.get(key, f"{value!r} (transformers' default for {kind})")
    return notes


def shape_from_config(path: str | Path) -> tuple[Shape, dict]:
    """(Shape, what was assumed) of a local config of a Llama-style model; ValueError naming what a Shape
    cannot describe (sliding windows inside the context, experts, latent attention, extra norms)."""
    model = model_from_config(path)
    if model.shape is None:
        raise ValueError(f"{model.source}: head-configuration comparisons need a Llama-style shape, and "
                         f"{model.architecture.family} is not one: {model.not_a_shape} (`gqa cost --config` costs it)")
    return model.shape, model.assumed
