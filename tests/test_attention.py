"""Every attention backend equals the reference math; the model matches transformers' own Llama."""

import math

import pytest
import torch

from gqa import attention
from gqa.attention import causal_mask

CASES = [  # (batch, n_h, n_kv, new tokens T, keys S, d_h)
    (2, 4, 1, 7, 7, 16),  # multi-query, prefill
    (1, 6, 6, 5, 5, 8),  # MHA
    (2, 8, 2, 1, 13, 32),  # decode: one new token against a cache
    (1, 4, 2, 3, 9, 24),  # chunked prefill against a cache
    (3, 12, 4, 16, 16, 40),  # head dim unrelated to any hidden size
]


def naive_attention(q, k, v, mask):
    """Loop over heads: query head h reads KV head h // (n_h / n_kv)."""
    b, n_h, t, d = q.shape
    group = n_h // k.shape[1]
    out = torch.empty(b, t, n_h, d, dtype=torch.float64)
    for h in range(n_h):
        scores = q[:, h].double() @ k[:, h // group].double().transpose(-1, -2) / math.sqrt(d)
        scores = scores.masked_fill(~mask, float("-inf"))
        out[:, :, h] = torch.softmax(scores, -1) @ v[:, h // group].double()
    return out


def random_qkv(b, n_h, n_kv, t, s, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n_h, t, d, generator=g), torch.randn(b, n_kv, s, d, generator=g),
            torch.randn(b, n_kv, s, d, generator=g))


def assert_close_rel(actual, expected, rel=1e-5):
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rel, atol=rel * scale)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_eager_equals_naive_loop(case):
    q, k, v = random_qkv(*case)
    t, s = case[3], case[4]
    mask = causal_mask(t, s)
    # a 4-D mask as transformers passes it, and None (causal applied by the backend) when T == S
    out_mask, _ = attention.eager_attention(None, q, k, v, mask[None, None].expand(case[0], 1, t, s))
    assert_close_rel(out_mask, naive_attention(q, k, v, mask))
    if t == s or t == 1:
        out_none, _ = attention.eager_attention(None, q, k, v, None)
        assert_close_rel(out_none, naive_attention(q, k, v, mask))


# Without a mask transformers guarantees T == S (prefill) or T == 1 (decode); with one, anything goes.
MASK_CASES = [(case, True) for case in CASES] + [(c, False) for c in CASES if c[3] in (1, c[4])]


@pytest.mark.parametrize("backend", ["sdpa", "repeat"])
@pytest.mark.parametrize("case, with_mask", MASK_CASES, ids=str)
def test_backend_equals_eager(backend, case, with_mask):
    q, k, v = random_qkv(*case, seed=1)
    b, _, _, t, s, _ = case
    mask = causal_mask(t, s)[None, None].expand(b, 1, t, s) if with_mask else None
    ref, _ = attention.eager_attention(None, q, k, v, mask)
    out, _ = attention.FUNCTIONS[backend](None, q, k, v, mask)
    assert out.shape == (b, t, case[1], case[5])
    assert_close_rel(out, ref)


def test_padding_mask_is_respected():
    q, k, v = random_qkv(2, 4, 2, 6, 6, 16, seed=2)
    mask = causal_mask(6, 6)[None, None].repeat(2, 1, 1, 1)
    mask[1, :, :, :2] = False  # second sequence is left-padded by two tokens
    mask[1, :, :2, 0] = True  # keep every row non-empty
    ref = naive_attention(q, k, v, mask[:, 0])
    for backend in ("eager", "sdpa", "repeat"):
        out, _ = attention.FUNCTIONS[backend](None, q, k, v, mask)
        assert_close_rel(out, ref)


def test_bad_heads_and_unknown_backends_are_clear_errors():
    q, k, v = torch.randn(1, 6, 3, 8), torch.randn(1, 4, 3, 8), torch.randn(1, 4, 3, 8)
    for backend in ("eager", "sdpa", "repeat"):
        with pytest.raises(ValueError, match="n_heads=6.*n_kv_heads=4"):
            attention.FUNCTIONS[backend](None, q, k, v, None)
    with pytest.raises(ValueError, match="'xformers'"):
        attention.check_backend("xformers")


@pytest.mark.skipif(attention.flash_available(), reason="flash-attn is installed with CUDA here")
def test_flash_without_flash_attn_is_a_clear_error():
    with pytest.raises(ValueError, match="flash"):
        attention.check_backend("flash")
    q = torch.randn(1, 4, 3, 8)
    with pytest.raises(ValueError, match="flash"):
        attention.flash_attention(None, q, q[:, :2], q[:, :2], None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_mask", [False, True])
def test_sdpa_kernel_is_reported_and_the_dispatcher_choice_matches_the_trace(dtype, with_mask):
    q, k, v = (t.to(dtype) for t in random_qkv(1, 8, 2, 64, 64, 64))
    mask = causal_mask(64, 64) if with_mask else None
    traced = attention.sdpa_kernel_used(q, k, v, mask, is_causal=not with_mask)
    assert traced in ("flash", "math", "efficient", "cudnn")
    assert attention.sdpa_kernel_chosen(q, k, v, mask, is_causal=not with_mask) == traced


@pytest.mark.parametrize("n_kv", [1, 2, 8])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_decode_folds_groups_and_splits_the_cache_exactly(n_kv, threads):
    """One new token against a long cache: folded groups, and split-KV when batch x n_kv < threads."""
    import torch

    from gqa import attention

    g = torch.Generator().manual_seed(n_kv)
    q, k, v = (torch.randn(1, 8, 1, 32, generator=g), torch.randn(1, n_kv, 8192, 32, generator=g),
               torch.randn(1, n_kv, 8192, 32, generator=g))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        parts = attention._split_parts(1, n_kv, 8192)
        out = attention.sdpa_attention(None, q, k, v, None)[0]
    finally:
        torch.set_num_threads(before)
    assert parts == max(1, min(threads // n_kv, 8192 // attention.MIN_SPLIT_KEYS))
    ref = attention.eager_attention(None, q, k, v, None)[0]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_decode_with_a_per_head_mask_matches_the_reference():
    import torch

    from gqa import attention

    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 8, 1, 16, generator=g)
    k, v = torch.randn(2, 2, 50, 16, generator=g), torch.randn(2, 2, 50, 16, generator=g)
    mask = torch.rand(2, 8, 1, 50, generator=g) > 0.3
    mask[..., 0] = True
    out, ref = attention.sdpa_attention(None, q, k, v, mask)[0], attention.eager_attention(None, q, k, v, mask)[0]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
