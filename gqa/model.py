"""Build the paper's Llama-style model from a `Shape`, as a transformers `LlamaForCausalLM`.

Architecture (paper, Sec. 4): RoPE θ = 500,000, SwiGLU FFN, pre-norm RMSNorm (eps 1e-6), no biases, no
dropout, tied embeddings unless the shape says otherwise, head dim decoupled from the hidden size.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from gqa import attention
from gqa.shapes import Shape

ROPE_THETA = 500_000.0
RMS_NORM_EPS = 1e-6


class DecoupledLlamaConfig(LlamaConfig):
    """LlamaConfig without transformers' `d % n_h == 0` check: here n_h·d_h need not equal d.

    The Llama modeling code only needs q_proj to be d x (n_h·d_h); the check is stricter than the model.
    """

    def validate_architecture(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"n_heads={self.num_attention_heads} is not a multiple of "
                             f"n_kv_heads={self.num_key_value_heads}")


def llama_config(shape: Shape, *, attention_backend: str = "sdpa",
                 max_context: int = 131_072) -> DecoupledLlamaConfig:
    if shape.qkv_bias or shape.o_bias or shape.qk_norm:
        raise ValueError(f"shape {shape.name or shape.describe()!r} has attention biases or QK norms; gqa builds "
                         "bias-free Llama models (such shapes are for costing only)")
    attention.register()
    config = DecoupledLlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=max_context,
        rms_norm_eps=RMS_NORM_EPS,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        tie_word_embeddings=shape.tied,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        hidden_act="silu",
        initializer_range=0.02,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    config._attn_implementation = attention.check_backend(attention_backend)
    return config


def build_model(shape: Shape, *, attention_backend: str = "sdpa", seed: int = 0,
                dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                max_context: int = 131_072) -> LlamaForCausalLM:
    """A freshly initialised model (seeded) with the chosen attention backend."""
    config = llama_config(shape, attention_backend=attention_backend, max_context=max_context)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.to(device=device, dtype=dtype)


def set_attention(model: LlamaForCausalLM, backend: str) -> LlamaForCausalLM:
    """Switch a model's attention backend in place (same weights)."""
    attention.register()
    model.set_attn_implementation(attention.check_backend(backend))
    return model


def load_model(path: str | Path, *, attention_backend: str = "sdpa",
               dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    """Load a model saved with `save_pretrained` (safetensors), with the chosen backend."""
    attention.register()
    config = DecoupledLlamaConfig.from_pretrained(str(path))
    return LlamaForCausalLM.from_pretrained(
        str(path), config=config, attn_implementation=attention.check_backend(attention_backend),
        dtype=dtype)


def shape_of(model: LlamaForCausalLM) -> Shape:
    """The `Shape` a transformers Llama model was built with."""
    c = model.config
    return Shape(c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
                 head_dim=c.head_dim, d_ff=c.intermediate_size, vocab=c.vocab_size,
                 tied=bool(c.tie_word_embeddings))
