"""The cost model against numbers derived by hand from Eq. 3-5 and Table 2."""

import math

import pytest

from gqa import cost
from gqa.shapes import Shape, get_preset

T128K = 131_072


def test_llama3_style_1p2b_at_128k_by_hand():
    s = Shape(36, 1536, 32, 8)  # d_ff = 4096, V = 50304, tied
    c = cost.inference_cost(s, T128K)
    # N = 77,266,944 (dV) + 283,115,520 (2*36*1536*64*40) + 679,477,248 (3*36*1536*4096)
    assert c.memory_weights == 1_039_859_712
    assert c.flops_time_invariant == 2 * 1_039_859_712
    assert c.flops_time_variant == 4 * T128K * 36 * 64 * 32 == 38_654_705_664
    assert c.memory_kv_cache == 2 * T128K * 36 * 64 * 8 == 4_831_838_208
    assert c.bytes_kv_cache == 9_663_676_416
    m, f = 1_039_859_712 + 4_831_838_208, 2_079_719_424 + 38_654_705_664
    assert c.z == pytest.approx(0.9 * math.sqrt(m) + 0.1 * f ** (1 / 3), rel=1e-12)
    assert c.z == pytest.approx(69_308.4, abs=0.1)


def test_llama31_8b_untied_at_128k_by_hand():
    s = get_preset("llama-3.1-8b")
    c = cost.inference_cost(s, T128K)
    assert c.bytes_kv_cache == 17_179_869_184  # 2 * 32 * 8 * 128 * 131072 * 2 bytes
    total = 8_030_261_248 - 65 * 4096  # published numel minus RMSNorm gains
    assert c.memory_weights == total
    # the untied input embedding (128256 * 4096) is a lookup: no FLOPs
    assert c.flops_time_invariant == 2 * (total - 128_256 * 4096) == 15_009_316_864
    assert c.flops_time_variant == 4 * T128K * 32 * 128 * 32


def test_small_shape_by_hand():
    s = Shape(4, 256, 4, 1, head_dim=32, vocab=1000)
    c = cost.inference_cost(s, 1000, dtype="fp32")
    assert c.flops_time_invariant == 5_492_736
    assert c.flops_time_variant == 2_048_000
    assert c.memory_kv_cache == 256_000 and c.bytes_kv_cache == 1_024_000
    nonemb = cost.inference_cost(s, 1000, params="non_embedding")
    assert nonemb.memory_weights == 2_490_368
    assert nonemb.flops_time_invariant == 2 * 2_490_368


def test_time_variant_parts_depend_only_on_their_heads():
    a, b = Shape(8, 512, 8, 1), Shape(8, 512, 8, 8)
    ca, cb = cost.inference_cost(a, 4096), cost.inference_cost(b, 4096)
    assert ca.flops_time_variant == cb.flops_time_variant  # n_h only
    assert cb.memory_kv_cache == 8 * ca.memory_kv_cache  # n_kv only


def test_components_sum_to_totals():
    for s in (Shape(36, 1536, 32, 8), get_preset("llama-3.1-8b"), get_preset("qwen2.5-7b")):
        comps = cost.components(s, 8192)
        c = cost.inference_cost(s, 8192)
        assert sum(x.flops for x in comps) == pytest.approx(c.flops, rel=1e-12)
        assert sum(x.memory for x in comps) == pytest.approx(c.memory, rel=1e-12)
        assert sum(x.params for x in comps) == s.params().total


def test_component_shares_by_hand():
    """Table 2's memory split of the 1.2B MHA backbone at 128K: the KV cache 2·T·36·64·24 values against
    36·(1536·64·96 + 3·1536·4096) weights and the tied embedding 50,304·1536."""
    kv = 2 * 131_072 * 36 * 64 * 24
    weights = 36 * (1536 * 64 * 96 + 3 * 1536 * 4096) + 50_304 * 1536
    shares = cost.component_shares(get_preset("paper-1.2b"), [1024, 131_072], "memory")
    assert shares["KV cache"][1] == pytest.approx(kv / (kv + weights), rel=1e-12)
    assert shares["KV cache"][0] == pytest.approx(kv / 128 / (kv / 128 + weights), rel=1e-12)


def test_kv_share_of_1b_mha_at_128k_is_about_90_percent():
    # Appendix G: for a 1B MHA model at 128K about 90% of memory is KV cache.
    c = cost.inference_cost(get_preset("paper-1.2b"), T128K)
    assert 0.85 < c.kv_share_of_memory < 0.97


def test_extensions_keep_paper_defaults():
    s = Shape(36, 1536, 32, 8)
    base = cost.inference_cost(s, 8192)
    fp8 = cost.inference_cost(s, 8192, kv_dtype="fp8")
    assert fp8.bytes_kv_cache == base.bytes_kv_cache / 2 and fp8.bytes_weights == base.bytes_weights
    b4 = cost.inference_cost(s, 8192, batch=4)
    assert b4.memory_kv_cache == 4 * base.memory_kv_cache and b4.memory_weights == base.memory_weights
    assert b4.flops == 4 * base.flops
    per_ctx = cost.inference_cost(s, 8192, flops_per="context")
    assert per_ctx.flops == 8192 * base.flops and per_ctx.memory == base.memory
    in_bytes = cost.inference_cost(s, 8192, z_memory="bytes")
    assert in_bytes.z == pytest.approx(0.9 * math.sqrt(2 * base.memory) + 0.1 * base.flops ** (1 / 3))
    hw = cost.HardwareWeights(lam=0.5, alpha=1.0, beta=1.0)
    assert cost.inference_cost(s, 8192, hw=hw).z == pytest.approx(0.5 * base.memory + 0.5 * base.flops)


def test_prefill_and_decode():
    s = Shape(2, 64, 4, 2, head_dim=16, vocab=100)
    # matmul params: 2*2*64*16*6 + 3*2*64*192 + 64*100 = 24576 + 73728 + 6400 = 104704
    assert cost.attention_flops(s, 10, causal=False) == 4 * 2 * 4 * 16 * 100
    assert cost.attention_flops(s, 10, causal=True) == 4 * 2 * 4 * 16 * 55
    assert cost.prefill_flops(s, 10, causal=False) == 2 * 104_704 * 10 + 51_200
    assert cost.decode_step_flops(s, 10, batch=3) == 3 * (2 * 104_704 + 4 * 10 * 2 * 16 * 4)
    assert cost.kv_cache_values(s, 10, batch=3) == 2 * 3 * 10 * 2 * 2 * 16


def test_training_cost_appendix_c():
    s = Shape(2, 64, 4, 2, head_dim=16, vocab=100)
    # 6 * D * (N + 2 * L * (T/2) * d_h * n_h), N = 104704 matmul params
    assert cost.training_flops(s, tokens=1000, context=128) == 6 * 1000 * (104_704 + 2 * 2 * 64 * 16 * 4)
    assert cost.training_memory(s, context=128) == 4 * 104_704 + 128 * 64 * 2


@pytest.mark.parametrize("kwargs, match", [(dict(context=-1), "context"),
                                           (dict(context=8, dtype="fp9"), "fp9"),
                                           (dict(context=8, batch=0), "batch"),
                                           (dict(context=8, params="all"), "all"),
                                           (dict(context=8, flops_per="year"), "year")])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cost.inference_cost(Shape(2, 64, 4, 2), **kwargs)
