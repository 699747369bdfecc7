"""Attention backends for grouped-query attention, registered with transformers' attention interface.

Every backend takes transformers' layout: query (B, n_h, T, d_h), key and value (B, n_kv, S, d_h) with
S >= T (cached keys first), an optional boolean mask (B or 1, 1, T, S) where True means "attend", and
returns (B, T, n_h, d_h). Query head h reads KV head h // (n_h / n_kv), as in transformers' repeat_kv.

  eager   explicit math (einsum, masked softmax in fp32): the reference; K/V are never repeated
  sdpa    PyTorch SDPA with native GQA (enable_gqa=True): K/V are never materialised n_h times. For one
          new token per sequence (decode) the n_h/n_kv query heads of a group are folded into the query
          length, so each K/V byte is read once, not once per query head. On CPU in fp32 with more than
          one query head per KV head, decode runs the project's own kernel (`cpu_decode`: the group in
          the lanes of one vector, K/V prefetched, the cached sequence split across threads and the parts
          merged by their log-sum-exp, flash-decoding's split-KV); otherwise PyTorch's fused kernel, with
          the same split when batch × n_kv is below the thread count
  repeat  K/V repeated to n_h heads, then SDPA: what the paper's official code does (the baseline)
  flash   flash-attn's native GQA, when flash-attn is installed and CUDA is present
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gqa import cpu_decode
from gqa.config import ATTENTION_BACKENDS

# user-facing name -> name registered with transformers. The registered names avoid the substrings
# "flash" and "sdpa", which transformers reads as requests for its own implementations.
REGISTERED_NAMES = {"eager": "gqa-ref", "sdpa": "gqa-native", "repeat": "gqa-repeat", "flash": "gqa-fa"}
BACKENDS = ATTENTION_BACKENDS  # the names a run's settings may give (gqa.config, torch-free)
assert set(REGISTERED_NAMES) == set(BACKENDS), "every backend a run may name is registered here"


def _check_shapes(query: torch.Tensor, key: torch.Tensor) -> int:
    """Query heads per KV head; ValueError when the head counts do not divide."""
    n_heads, n_kv = query.shape[1], key.shape[1]
    if n_kv < 1 or n_heads % n_kv:
        raise ValueError(f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv}")
    return n_heads // n_kv


def _is_causal(module: torch.nn.Module | None, query: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Causal masking is ours to apply only when no mask was given and several queries are new."""
    return mask is None and query.shape[2] > 1 and getattr(module, "is_causal", True)


def causal_mask(q_len: int, kv_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(q_len, kv_len) boolean mask, bottom-right aligned: new query i sits at position kv_len - q_len + i."""
    rows = torch.arange(q_len, device=device)[:, None] + (kv_len - q_len)
    return rows >= torch.arange(kv_len, device=device)[None, :]


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, n_kv, S, d_h) -> (B, n_kv·n_rep, S, d_h), always materialising the copies.

    (An expand-and-reshape can be a free view when n_kv = 1; the official code's repeat is a real copy.)
    """
    return x if n_rep == 1 else torch.repeat_interleave(x, n_rep, dim=1)


def eager_attention(module: torch.nn.Module | None, query: torch.Tensor, key: torch.Tensor,
                    value: torch.Tensor, attention_mask: torch.Tensor | None,
                    scaling: float | None = None, dropout: float = 0.0, **kwargs) -> tuple:
    """Reference math: softmax(QKᵀ·scale + mask)·V per group of query heads, in fp32 for the softmax."""
    group = _check_shapes(query, key)
    b, n_heads, t, d = query.shape
    n_kv, s = key.shape[1], key.shape[2]
    scale = d**-0.5 if scaling is None else scaling
    q = query.reshape(b, n_kv, group, t, d)
    scores = torch.einsum("bkgtd,bksd->bkgts", q, key) * scale
    mask = attention_mask
    if mask is None and _is_causal(module, query, None):
        mask = causal_mask(t, s, query.device)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"expected a boolean attention mask, got {mask.dtype}")
        scores = scores.masked_fill(~_grouped(mask, n_kv, group), float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(value.dtype)
    if dropout and module is not None and module.training:
        probs = F.dropout(probs, p=dropout)
    out = torch.einsum("bkgts,bksd->bkgtd", probs, value).reshape(b, n_heads, t, d)
    return out.transpose(1, 2).contiguous(), None


def _grouped(mask: torch.Tensor, n_kv: int, group: int) -> torch.Tensor:
    """A (T, S), (B, 1, T, S) or (B, n_h, T, S) mask, broadcastable to (B, n_kv, group, T, S)."""
    if mask.dim() == 2:
        return mask[None, None, None]
    if mask.dim() != 4 or mask.shape[1] not in (1, n_kv * group):
        raise ValueError(f"unsupported attention mask shape {tuple(mask.shape)}")
    if mask.shape[1] == 1:
        return mask[:, :, None]
    return mask.reshape(mask.shape[0], n_kv, group, *mask.shape[-2:])


MIN_SPLIT_KEYS = 2048  # below this many cached keys per part, splitting costs more than it gains


def _decode_mask(mask: torch.Tensor | None, n_kv: int, group: int) -> torch.Tensor | None:
    """A decode mask, (B or 1, 1, 1, S) or (B, n_h, 1, S), for queries folded to (B, n_kv, group, S)."""
    if mask is None or mask.shape[1] == 1:
        return mask
    return mask.reshape(mask.shape[0], n_kv, group, mask.shape[-1])


def _split_parts(batch: int, n_kv: int, keys: int) -> int:
    """How many parts to split the cached keys into so every CPU thread has work (1: no split)."""
    if batch * n_kv == 0:
        return 1  # an empty batch: nothing to split
    parts = torch.get_num_threads() // (batch * n_kv)
    while parts > 1 and (keys % parts or keys // parts < MIN_SPLIT_KEYS):
        parts -= 1
    return max(parts, 1)


def _split_kv_decode(q: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None,
                     parts: int) -> torch.Tensor:
    """Folded queries (B, n_kv, g, d) against keys split into `parts` runs along the sequence, all in one
    fused call (parts become heads), then merged exactly: out = Σ_p softmax_p(lse_p) · out_p."""
    b, n_kv, g, d = q.shape
    s = key.shape[2]
    qq = q[:, :, None].expand(b, n_kv, parts, g, d).reshape(b, n_kv * parts, g, d)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        qq, key.reshape(b, n_kv * parts, s // parts, d), value.reshape(b, n_kv * parts, s // parts, d), 0.0, False,
        scale=scale)
    weights = torch.softmax(lse.view(b, n_kv, parts, g, 1).float(), dim=2)
    return (out.view(b, n_kv, parts, g, d).float() * weights).sum(2).to(q.dtype)


def _can_split(query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None) -> bool:
    return (mask is None and query.device.type == "cpu" and key.is_contiguous() and
            hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"))


def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                     scaling: float | None, group: int) -> torch.Tensor:
    """One new token per sequence, each K/V byte read once: (B, n_h, 1, d) -> (B, n_h, 1, d)."""
    if cpu_decode.applies(query, key, value, mask):
        return cpu_decode.attend(query, key, value, mask, scaling)
    b, n_heads, _, d = query.shape
    n_kv, s = key.shape[1], key.shape[2]
    q = query.reshape(b, n_kv, group, d)
    parts = _split_parts(b, n_kv, s) if _can_split(query, key, mask) else 1
    if parts > 1:
        out = _split_kv_decode(q, key, value, scaling, parts)
    else:
        out = F.scaled_dot_product_attention(q, key, value, attn_mask=_decode_mask(mask, n_kv, group), scale=scaling)
    return out.reshape(b, n_heads, 1, d)


def sdpa_attention(module: torch.nn.Module | None, query: torch.Tensor, key: torch.Tensor,
                   value: torch.Tensor, attention_mask: torch.Tensor | None,
                   scaling: float | None = None, dropout: float = 0.0, **kwargs) -> tuple:
    """PyTorch SDPA with native GQA: no repeated K/V; decode through `decode_attention`."""
    group = _check_shapes(query, key)
    if query.shape[2] == 1 and not (dropout and _training(module)):
        return decode_attention(query, key, value, attention_mask, scaling, group).transpose(1, 2).contiguous(), None
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout if _training(module) else 0.0,
        scale=scaling, is_causal=_is_causal(module, query, attention_mask), enable_gqa=group > 1)
    return out.transpose(1, 2).contiguous(), None


def repeat_attention(module: torch.nn.Module | None, query: torch.Tensor, key: torch.Tensor,
                     value: torch.Tensor, attention_mask: torch.Tensor | None,
                     scaling: float | None = None, dropout: float = 0.0, **kwargs) -> tuple:
    """The official code's approach: repeat K/V to n_h heads, then SDPA (memory grows n_h/n_kv-fold)."""
    group = _check_shapes(query, key)
    out = F.scaled_dot_product_attention(
        query, repeat_kv(key, group), repeat_kv(value, group), attn_mask=attention_mask,
        dropout_p=dropout if _training(module) else 0.0, scale=scaling,
        is_causal=_is_causal(module, query, attention_mask))
    return out.transpose(1, 2).contiguous(), None


def flash_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def require_flash() -> None:
    """Raise a clear error unless flash-attn can run here."""
    if importlib.util.find_spec("flash_attn") is None:
        raise ValueError("attention backend 'flash' needs flash-attn 2 (pip install 'gqa[cuda]') or "
                         "FlashAttention-4 (pip install flash-attn-4) on a CUDA machine, or choose 'sdpa'")
    if not torch.cuda.is_available():
        raise ValueError("attention backend 'flash' needs a CUDA device; choose 'sdpa' on CPU")


def flash_attention(module: torch.nn.Module | None, query: torch.Tensor, key: torch.Tensor,
                    value: torch.Tensor, attention_mask: torch.Tensor | None,
                    scaling: float | None = None, dropout: float = 0.0, **kwargs) -> tuple:
    """flash-attn with native GQA (fewer K/V heads than query heads); causal is bottom-right aligned."""
    require_flash()
    _check_shapes(query, key)
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("the 'flash' backend supports causal attention without padding only")
    causal = query.shape[2] > 1 and getattr(module, "is_causal", True)
    q, k, v = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
    try:
        from flash_attn import flash_attn_func  # lazy: optional, CUDA only (flash-attn 2)
    except ImportError:  # FlashAttention-4 (package flash-attn-4): no dropout; returns (out, lse)
        from flash_attn.cute import flash_attn_func

        if dropout and _training(module):
            raise ValueError("FlashAttention-4 has no dropout; train with dropout 0 or another backend") from None
        out = flash_attn_func(q, k, v, softmax_scale=scaling, causal=causal)
        return (out[0] if isinstance(out, tuple) else out), None
    out = flash_attn_func(q, k, v, dropout_p=dropout if _training(module) else 0.0, softmax_scale=scaling,
                          causal=causal)
    return out, None


def _training(module: torch.nn.Module | None) -> bool:
    return bool(module is not None and module.training)


FUNCTIONS: dict[str, Callable] = {"eager": eager_attention, "sdpa": sdpa_attention,
                                  "repeat": repeat_attention, "flash": flash_attention}


def check_backend(name: str) -> str:
    """Validate a backend name; 'flash' also needs flash-attn and CUDA. Returns the registered name."""
    if name not in REGISTERED_NAMES:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "flash":
        require_flash()
    return REGISTERED_NAMES[name]


_registered = False


def register() -> None:
    """Register every backend (and its mask builder) with transformers, once."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    for name, fn in FUNCTIONS.items():
        AttentionInterface.register(REGISTERED_NAMES[name], fn)
        # sdpa_mask: a boolean mask, or None when plain causal masking is enough (we then apply it)
        AttentionMaskInterface.register(REGISTERED_NAMES[name], sdpa_mask)
    _registered = True


_KERNEL_NAMES = {0: "math", 1: "flash", 2: "efficient", 3: "cudnn", 4: "overrideable", -1: "error"}


def sdpa_kernel_chosen(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None = None, is_causal: bool = False) -> str:
    """The SDPA kernel PyTorch's dispatcher picks for these inputs (`torch._fused_sdp_choice`, the
    function `scaled_dot_product_attention` itself consults). Cheap and silent; `sdpa_kernel_used`
    confirms it from a profiler trace."""
    choice = torch._fused_sdp_choice(query, key, value, attention_mask, 0.0, is_causal, scale=None,
                                     enable_gqa=query.shape[1] != key.shape[1])
    return _KERNEL_NAMES.get(int(choice), f"backend {int(choice)}")


def decode_kernel(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None = None) -> str:
    """The kernel the `sdpa` backend runs for one new token per sequence: "gqa-cpu" (`cpu_decode`), or
    PyTorch's SDPA kernel for the folded query."""
    if cpu_decode.applies(query, key, value, attention_mask):
        return "gqa-cpu"
    b, n_heads, _, d = query.shape
    folded = query.reshape(b, key.shape[1], n_heads // key.shape[1], d)
    return sdpa_kernel_chosen(folded, key, value, _decode_mask(attention_mask, key.shape[1], n_heads // key.shape[1]))


def sdpa_kernel_used(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None = None, is_causal: bool = False) -> str:
    """Which SDPA kernel PyTorch runs for these inputs (with native GQA), read from the profiler.

    fp32 inputs, large head dims or explicit masks can make SDPA fall back to the math kernel silently.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if query.is_cuda else [])
    with profile(activities=activities) as prof:
        F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, is_causal=is_causal,
                                       enable_gqa=query.shape[1] != key.shape[1])
    names = {evt.key for evt in prof.key_averages()}
    for kernel, op in (("flash", "_scaled_dot_product_flash_attention"),
                       ("cudnn", "_scaled_dot_product_cudnn_attention"),
                       ("efficient", "_scaled_dot_product_efficient_attention"),
                       ("math", "_scaled_dot_product_attention_math")):
        if any(op in n for n in names):
            return kernel
    return "unknown"
