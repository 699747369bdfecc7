"""A `Shape` from a Hugging Face model's configuration, read offline with transformers' config classes.

`gqa cost --config PATH` and `gqa plan --baseline-config PATH` take a `config.json` or a local model
folder. The file is read by `transformers.AutoConfig` with `local_files_only=True`: nothing is
downloaded. Supported families, and what each adds to a plain Llama shape:

  llama    attention_bias (biases on Q, K, V and O), head_dim when given; mlp_bias is refused
  mistral  head_dim when given (Mistral-Nemo); no biases
  qwen2    biases on Q, K, V always (Qwen2, Qwen2.5); head_dim = hidden_size / heads
  qwen3    RMSNorm on queries and keys (2·d_h gains per layer), explicit head_dim, attention_bias

Every other `model_type` is refused with the list above: its parameter count could differ in ways a
Shape does not describe.
"""

from __future__ import annotations

import json
from pathlib import Path

from gqa.shapes import Shape

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")


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
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                "intermediate_size", "vocab_size"):  # read as given, before transformers fills or rejects them
        value = raw.get(key)
        if key in raw and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{config_file}: {key} must be a positive whole number, got {value!r}")
    try:
        from transformers import AutoConfig
    except ImportError:
        raise RuntimeError("reading a Hugging Face config needs transformers: pip install 'gqa[models]'") from None
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True), raw
    except Exception as e:  # noqa: BLE001 -- transformers' validation errors have their own classes
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{config_file}: transformers cannot read it ({first})") from None


def shape_from_config(path: str | Path) -> tuple[Shape, dict]:
    """(Shape, notes) of a local Hugging Face config; notes say which fields were derived, not read."""
    config, raw = read_config(path)
    kind = config.model_type
    where = Path(path) / "config.json" if Path(path).is_dir() else Path(path)
    n_heads = int(config.num_attention_heads)
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    tied = bool(getattr(config, "tie_word_embeddings", False))
    # what the file leaves out and transformers' config class fills in, said rather than silent
    notes = {key: f"not in the config: {why}" for key, why in (
        ("num_key_value_heads", f"{n_kv} (transformers' default)"),
        ("head_dim", f"{head_dim} (hidden_size / heads)" if kind != "qwen3" else f"{head_dim} (Qwen3's default)"),
        ("tie_word_embeddings", f"{'tied' if tied else 'untied'} (transformers' default)"),
        ("intermediate_size", f"{config.intermediate_size} (transformers' default for {kind})"))
        if key not in raw}
    if kind == "qwen2":  # Qwen2 has no head_dim setting: hidden_size / heads is the model, not a guess
        notes.pop("head_dim", None)
    if n_heads % int(n_kv):
        raise ValueError(f"{where}: num_attention_heads = {n_heads} is not a multiple of num_key_value_heads = {n_kv}")
    if getattr(config, "mlp_bias", False):
        raise ValueError(f"{path}: mlp_bias = true is not supported (FFN biases are not in the cost model)")
    # Llama and Qwen3 read attention_bias (Q, K, V and O); Qwen2 always has Q, K, V biases; Mistral none
    attention_bias = kind in ("llama", "qwen3") and bool(getattr(config, "attention_bias", False))
    name = getattr(config, "_name_or_path", "") or ""
    name = Path(name).name if name else ""
    if name.endswith(".json"):  # a file given directly: the model is its folder
        name = Path(path).resolve().parent.name
    shape = Shape(
        layers=int(config.num_hidden_layers), d_model=int(config.hidden_size), n_heads=n_heads,
        n_kv_heads=int(n_kv), head_dim=int(head_dim), d_ff=int(config.intermediate_size),
        vocab=int(config.vocab_size), tied=tied,
        qkv_bias=attention_bias or kind == "qwen2", o_bias=attention_bias,
        qk_norm=kind == "qwen3", name=name or f"{kind} config")
    return shape, notes
