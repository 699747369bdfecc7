"""`gqa.architecture`: the cost model for any decoder, checked against the paper's Shape path and against
numbers derived by hand from published configurations."""

import pytest

from gqa import architecture as A
from gqa import cost
from gqa.hardware import custom, preset
from gqa.shapes import get_preset, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_a_shape_costs_the_same_through_either_path(name):
    shape = get_preset(name)
    arch = A.Architecture.from_shape(shape)
    assert (arch.total, arch.non_embedding, arch.norms, arch.numel) == (
        shape.params().total, shape.params().non_embedding, shape.params().norms, shape.params().numel)
    for context in (0, 1, 4096, 1 << 20):
        for params in ("total", "non_embedding"):
            kw = dict(params=params, batch=3, kv_dtype="fp8")
            assert A.inference_cost(arch, context, **kw) == cost.inference_cost(shape, context, **kw)
            assert A.components(arch, context, params=params, batch=3) == cost.components(
                shape, context, params=params, batch=3)


def _gemma2_9b() -> A.Architecture:
    """Gemma-2-9B by hand: 42 layers alternating sliding (4,096) and global, n_h = 16, n_kv = 8, d_h = 256."""
    layers = tuple(A.LayerAttention(16, 2 * 8 * 256, 256, 256, 4096 if i % 2 == 0 else None) for i in range(42))
    return A.Architecture("gemma-2-9b", "gemma2", 3584, 256000, True, layers, attention=42 * 44_040_192,
                          ffn=42 * 3 * 3584 * 14336, ffn_active=42 * 3 * 3584 * 14336, max_position=8192)


def test_sliding_windows_cap_the_cache_and_the_attention():
    arch = _gemma2_9b()
    t = 131072
    full, local = 21 * t, 21 * 4096  # tokens held: 21 global layers keep all, 21 local ones the window
    assert arch.kv_values(t) == (full + local) * 4096
    plain = 42 * t * 4096  # the same layers without windows (a plain Shape)
    assert plain / arch.kv_values(t) == pytest.approx(2 * t / (t + 4096))  # about 2x, as the issue measured
    assert arch.operator_flops(t) == 2 * 16 * 512 * (full + local)
    assert arch.kv_values(4000) == 42 * 4000 * 4096  # below the window nothing is dropped
    # causal prefill of T > W tokens: a local layer sums min(i, W) over the queries
    t = 10_000
    local_pairs = 4096 * 4097 / 2 + (t - 4096) * 4096
    assert A.prefill_attention_flops(arch, t) == 2 * 16 * 512 * (21 * t * (t + 1) / 2 + 21 * local_pairs)


def test_a_mixture_reads_the_experts_it_runs_and_holds_them_all():
    """Mixtral-8x7B: 8 experts of 3·4,096·14,336 in 32 layers, 2 per token."""
    expert = 3 * 4096 * 14336
    layer = A.LayerAttention(32, 2 * 8 * 128, 128, 128)
    arch = A.Architecture("mixtral", "mixtral", 4096, 32000, False, (layer,) * 32, attention=32 * 41_943_040,
                          ffn=32 * 8 * expert, ffn_active=32 * 2 * expert, router=32 * 8 * 4096,
                          experts=A.Experts(8, 2, 32))
    assert arch.total - arch.active == 32 * 6 * expert
    c = A.inference_cost(arch, 0)
    assert c.flops_time_invariant == 2 * (arch.active - 32000 * 4096)  # untied input embedding: a lookup
    assert c.memory_weights == arch.total
    assert A.experts_read(arch, 1) == pytest.approx(2)  # one token: its 2 experts per layer
    assert A.experts_read(arch, 10_000) == pytest.approx(8)  # many tokens: every expert
    assert A.weights_read(arch, 1) == pytest.approx(arch.active - 32000 * 4096)
    assert A.weights_read(arch, 3) == pytest.approx(arch.total - 32000 * 4096 - 32 * expert * 8 * (0.75 ** 3))


def test_rooflines_by_hand():
    """A 1,000-parameter toy on a machine of 1,000 bytes/s and 10,000 FLOP/s, bf16, one layer caching 4
    values a token, n_h = 1, d_h = 2."""
    layer = A.LayerAttention(1, 4, 2, 2)
    arch = A.Architecture("toy", "llama", 10, 20, True, (layer,), attention=400, ffn=400, ffn_active=400)
    assert arch.total == 1000
    device = custom(1000.0, 10_000.0)
    d = A.decode_roofline(arch, 100, device, batch=2)
    assert d.bytes == 2 * 1000 + 2 * 2 * 4 * 100  # weights once, two caches
    assert d.flops == 2 * (2 * 1000 + 2 * 1 * 4 * 100)
    assert d.seconds == pytest.approx(d.bytes / 1000) and d.bound == "memory"
    assert d.tokens_per_s == pytest.approx(2 / d.seconds)
    p = A.prefill_roofline(arch, 100, device, efficiency=0.5)
    assert p.flops == 2 * 1000 * 100 + 2 * 1 * 4 * 100 * 101 / 2
    assert p.bytes == 2 * 1000 + 2 * 4 * 100
    assert p.seconds == pytest.approx(max(p.flops / 10_000, p.bytes / 1000))
    assert p.seconds_at_efficiency == pytest.approx(2 * p.seconds)
    assert p.seconds_per_token == pytest.approx(2 * p.seconds / 100)
    with pytest.raises(ValueError, match="efficiency"):
        A.prefill_roofline(arch, 100, device, efficiency=1.5)


def test_inverse_questions_by_hand():
    layer = A.LayerAttention(1, 4, 2, 2)
    arch = A.Architecture("toy", "llama", 10, 20, True, (layer,), attention=400, ffn=400, ffn_active=400)
    # bf16: weights 2,000 bytes, 8 bytes a token a sequence
    assert A.max_context(arch, 2000 + 8 * 250) == 250
    assert A.max_context(arch, 2000 + 8 * 250 + 7) == 250
    assert A.max_context(arch, 2000 + 8 * 250, batch=2) == 125
    assert A.max_context(arch, 1999) == 0
    assert A.max_batch(arch, 100, 2000 + 8 * 100 * 7 + 5) == 7
    assert A.max_batch(arch, 100, 1000) == 0
    sliding = A.Architecture("toy", "mistral", 10, 20, True, (A.LayerAttention(1, 4, 2, 2, 64),), attention=400,
                             ffn=400, ffn_active=400)
    assert A.max_context(sliding, 2000 + 8 * 64) is None  # the cache stops at 64 tokens: every context fits
    assert A.max_context(sliding, 2000 + 8 * 63) == 63


def test_mla_costs_the_latent_and_names_the_expanded_cache():
    served = A.LayerAttention(128, 512 + 64, 512 + 64, 512)
    expanded = A.LayerAttention(128, 128 * (192 + 128), 192, 128)
    arch = A.Architecture("v3", "deepseek_v3", 7168, 129280, False, (served,) * 61, attention=1, ffn=1,
                          ffn_active=1, alternative_cache=("expanded", (expanded,) * 61))
    assert arch.kv_values(1000) == 61 * 576 * 1000
    assert arch.kv_values(1000, cache="expanded") == 61 * 128 * 320 * 1000
    with pytest.raises(ValueError, match="default, expanded"):
        arch.kv_values(1000, cache="paged")
    # prefill in the cheaper expanded form (per pair 2·128·(192 + 128) against 2·128·(576 + 512)), cache the latent
    p = A.prefill_roofline(arch, 1000, custom(1e12, 1e15))
    assert p.flops == 2 * arch.matmul_params() * 1000 + 61 * 2 * 128 * 320 * 1000 * 1001 / 2
    assert p.bytes == 2 * A.weights_read(arch, 1000) + 2 * 61 * 576 * 1000


def test_hardware_presets_and_custom_machines():
    assert preset("4090").name == "rtx-4090" and preset("RTX-4090").memory == 24e9
    assert custom(1e12, 1e14).memory is None
    with pytest.raises(ValueError, match="bandwidth"):
        custom(0, 1e14)
