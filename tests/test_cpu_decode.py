"""The CPU decode kernel equals the reference math in every case decode meets, and is really the one used."""

import os
import subprocess
import sys

import pytest
import torch
from test_attention import assert_close_rel, naive_attention

from gqa import attention, cpu_decode

DECODE_CASES = [  # (batch, n_h, n_kv, cached keys S, d_h)
    (1, 16, 1, 8192, 64),  # multi-query, split across threads
    (2, 8, 2, 13, 32),  # a short cache: fewer keys than one block
    (1, 12, 4, 4099, 64),  # g = 3, S not a multiple of the block or of four
    (3, 20, 2, 300, 80),  # g = 10 in 16 lanes; d_h = 80, not a multiple of the register tile
    (1, 32, 1, 5000, 24),  # g = 32: two tiles of 16 query heads; d_h = 24
    (2, 6, 3, 777, 40),  # head dim unrelated to any hidden size
    (1, 20, 1, 3001, 33),  # g = 20: a full tile and a partial one; an odd head dim
]


def decode_inputs(b, n_h, n_kv, s, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n_h, 1, d, generator=g), torch.randn(b, n_kv, s, d, generator=g),
            torch.randn(b, n_kv, s, d, generator=g))


def naive(q, k, v, mask=None):
    """float64 loop over heads (B, T, n_h, d), from the attention tests; mask (B, 1 or n_h, 1, S)."""
    if mask is None:
        return naive_attention(q, k, v, torch.ones(1, 1, k.shape[2], dtype=torch.bool))
    outs = [naive_attention(q[:, h:h + 1], k[:, h // (q.shape[1] // k.shape[1])][:, None],
                            v[:, h // (q.shape[1] // k.shape[1])][:, None],
                            mask[:, h if mask.shape[1] > 1 else 0]) for h in range(q.shape[1])]
    return torch.cat(outs, dim=2)


def sdpa_with_threads(threads, q, k, v, mask):
    """The sdpa backend's output with torch (and so the kernel) set to `threads` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return attention.sdpa_attention(None, q, k, v, mask)[0]
    finally:
        torch.set_num_threads(before)


def test_the_kernel_builds_here():
    assert cpu_decode.available(), cpu_decode.reason()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", DECODE_CASES, ids=str)
def test_kernel_equals_the_reference(case, threads):
    q, k, v = decode_inputs(*case)
    assert cpu_decode.applies(q, k, v, None)
    assert_close_rel(sdpa_with_threads(threads, q, k, v, None), naive(q, k, v))


@pytest.mark.parametrize("threads", [2, 8])
@pytest.mark.parametrize("heads_in_mask", [1, 8])
def test_padding_and_per_head_masks(heads_in_mask, threads):
    """Left padding as a batch of prompts has it (whole blocks and, with 8 threads, whole parts of the
    split cache masked), and a different mask per head."""
    q, k, v = decode_inputs(3, 8, 2, 4500, 32, seed=1)
    g = torch.Generator().manual_seed(2)
    mask = torch.rand(3, heads_in_mask, 1, 4500, generator=g) > 0.2
    mask[1, :, :, :3000] = False  # sequence 1 is left-padded over the first part of the cache
    mask[..., -1] = True
    assert cpu_decode.applies(q, k, v, mask)
    out = sdpa_with_threads(threads, q, k, v, mask)
    assert_close_rel(out, naive(q, k, v, mask))
    assert_close_rel(out, attention.eager_attention(None, q, k, v, mask)[0])


def test_a_batch_shared_mask_and_a_strided_cache():
    """A (1, 1, 1, S) mask broadcast over the batch, and K/V as views into a larger preallocated cache."""
    q, _, _ = decode_inputs(2, 8, 2, 10, 32)
    g = torch.Generator().manual_seed(5)
    big_k, big_v = torch.randn(2, 2, 6000, 32, generator=g), torch.randn(2, 2, 6000, 32, generator=g)
    k, v = big_k[:, :, :4321], big_v[:, :, :4321]  # a static cache filled up to 4321 positions
    mask = torch.rand(1, 1, 1, 4321, generator=g) > 0.5
    assert not k.is_contiguous() and cpu_decode.applies(q, k, v, mask)
    assert_close_rel(attention.sdpa_attention(None, q, k, v, mask)[0], naive(q, k, v, mask.expand(2, 1, 1, 4321)))


def test_a_fully_masked_row_is_nan_as_in_the_reference():
    q, k, v = decode_inputs(2, 4, 2, 100, 16)
    mask = torch.ones(2, 1, 1, 100, dtype=torch.bool)
    mask[0] = False
    out = attention.sdpa_attention(None, q, k, v, mask)[0]
    ref = attention.eager_attention(None, q, k, v, mask)[0]
    assert torch.isnan(out[0]).all() and torch.isnan(ref[0]).all()
    assert_close_rel(out[1], ref[1])


def test_a_custom_scale_is_applied():
    q, k, v = decode_inputs(1, 8, 2, 300, 16)
    out = attention.sdpa_attention(None, q, k, v, None, scaling=0.5)[0]
    assert_close_rel(out, naive(q * (0.5 * 16**0.5), k, v))  # the reference scales by d^-1/2


def test_cases_the_kernel_leaves_to_pytorch():
    q, k, v = decode_inputs(1, 8, 2, 64, 32)
    assert not cpu_decode.applies(q.bfloat16(), k.bfloat16(), v.bfloat16(), None)  # fp32 only
    assert not cpu_decode.applies(q, k[:, :1].expand(1, 8, 64, 32), v[:, :1].expand(1, 8, 64, 32), None)  # g = 1
    assert not cpu_decode.applies(q, k.transpose(-1, -2).contiguous().transpose(-1, -2), v, None)  # rows strided
    assert not cpu_decode.applies(q, k, v, torch.zeros(1, 1, 1, 64))  # an additive float mask
    assert not cpu_decode.applies(q, k[:1, :, :0], v[:1, :, :0], None)  # no cached position
    assert not cpu_decode.applies(q[:0], k[:0], v[:0], None)  # an empty batch: PyTorch returns an empty tensor
    assert attention.sdpa_attention(None, q[:0], k[:0], v[:0], None)[0].shape[0] == 0
    q2 = torch.cat([q, q])  # batch 2 against a cache of batch 1: PyTorch broadcasts, the kernel would not
    assert not cpu_decode.applies(q2, k, v, None)
    assert_close_rel(attention.sdpa_attention(None, q2, k, v, None)[0], attention.eager_attention(None, q2, k, v,
                                                                                                  None)[0])
    assert not cpu_decode.applies(q, k, v[..., :16], None)  # V narrower than K
    assert not cpu_decode.applies(q, k, v, torch.ones(2, 1, 1, 64, dtype=torch.bool))  # mask batch 2, inputs 1
    assert not cpu_decode.applies(torch.randn(1, 6, 1, 32), torch.randn(1, 4, 64, 32), torch.randn(1, 4, 64, 32),
                                  None)  # 6 query heads over 4 KV heads: not a grouping
    qg = q.clone().requires_grad_()
    assert not cpu_decode.applies(qg, k, v, None)  # autograd needs PyTorch's kernels
    with torch.no_grad():
        assert cpu_decode.applies(qg, k, v, None)


def test_parts_give_every_thread_work_without_tiny_parts():
    assert cpu_decode.parts_for(tasks=1, keys=65536, threads=8) == 8
    assert cpu_decode.parts_for(tasks=1, keys=5000, threads=8) == 2  # 5000 // 2048
    assert cpu_decode.parts_for(tasks=16, keys=65536, threads=8) == 1
    assert cpu_decode.parts_for(tasks=1, keys=100, threads=8) == 1


def test_the_build_is_cached_and_keyed_by_machine_and_compiler():
    path = cpu_decode.build()
    stamp = path.stat().st_mtime_ns
    assert cpu_decode.build() == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    assert path.name.startswith("decode_cpu-") and len(path.stem.split("-")[-1]) == 16


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


FALLBACK = """
import torch
from gqa import attention, cpu_decode
g = torch.Generator().manual_seed(0)
q = torch.randn(1, 8, 1, 32, generator=g)
k, v = torch.randn(1, 2, 5000, 32, generator=g), torch.randn(1, 2, 5000, 32, generator=g)
out = attention.sdpa_attention(None, q, k, v, None)[0]
ref = attention.eager_attention(None, q, k, v, None)[0]
torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
print(cpu_decode.available(), cpu_decode.reason())
"""


@pytest.mark.parametrize("env, why", [({"CXX": "/nonexistent/c++"}, "not built"),
                                      ({"GQA_CPU_DECODE": "0"}, "disabled by GQA_CPU_DECODE=0"),
                                      ({"GQA_CPU_DECODE": "off"}, "disabled by GQA_CPU_DECODE=off")])
def test_without_the_kernel_decode_falls_back_and_says_why(tmp_path, env, why):
    result = run_python(FALLBACK, GQA_WORK_DIR=str(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False") and why in result.stdout
    # a missing compiler is worth one warning (decode is slower without the kernel); a choice is not
    assert ("falls back to PyTorch" in result.stderr) == ("CXX" in env), result.stderr


def test_a_broken_library_is_rebuilt_and_a_shared_directory_is_not_trusted(tmp_path):
    """A truncated .so in the build directory is replaced; a build directory that others can write to is
    passed over for the user's own cache; $CXX may carry a launcher ("env c++")."""
    work, home_cache = tmp_path / "work", tmp_path / "home-cache"
    (work / "kernels").mkdir(parents=True)
    code = ("from gqa import cpu_decode; p = cpu_decode.library_path(); p.write_bytes(b'not a library'); "
            "print(cpu_decode.available(), p.parent)")
    result = run_python(code, GQA_WORK_DIR=str(work), XDG_CACHE_HOME=str(home_cache), CXX="env c++")
    assert result.returncode == 0 and result.stdout.startswith("True"), result.stdout + result.stderr
    # a loadable library that lacks the kernel's entry point (another build, or a planted one) is rebuilt
    code = ("import shutil, ctypes.util; from gqa import cpu_decode; p = cpu_decode.library_path(); "
            "shutil.copy(ctypes.util.find_library('m') and '/lib/x86_64-linux-gnu/libm.so.6', p); "
            "print(cpu_decode.available(), hasattr(cpu_decode._lib, 'gqa_decode'))")
    result = run_python(code, GQA_WORK_DIR=str(work), XDG_CACHE_HOME=str(home_cache))
    assert result.returncode == 0 and result.stdout.split() == ["True", "True"], result.stdout + result.stderr
    (work / "kernels").chmod(0o777)  # now anyone may plant a library there
    code = "from gqa import cpu_decode; print(cpu_decode.available(), cpu_decode.library_path().parent)"
    result = run_python(code, GQA_WORK_DIR=str(work), XDG_CACHE_HOME=str(home_cache))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(home_cache / "gqa" / "kernels")]
    # a private folder under a folder anyone may write to (no sticky bit) is not trusted either: the folder
    # itself could be swapped
    (work / "kernels").chmod(0o700)
    work.chmod(0o777)
    result = run_python(code, GQA_WORK_DIR=str(work), XDG_CACHE_HOME=str(home_cache))
    work.chmod(0o755)
    assert result.returncode == 0 and result.stdout.split() == ["True", str(home_cache / "gqa" / "kernels")]


@pytest.mark.parametrize("batch, keys", [(0, 10), (1, 0), (0, 0)])
def test_empty_batches_and_caches_behave_as_eager(batch, keys):
    """Edges the kernel leaves to PyTorch: every backend returns what eager returns (an empty tensor, or
    zeros for a query with nothing to attend to), and none raises."""
    q, k, v = torch.randn(batch, 8, 1, 16), torch.randn(batch, 2, keys, 16), torch.randn(batch, 2, keys, 16)
    reference = attention.eager_attention(None, q, k, v, None)[0]
    for name in ("sdpa", "repeat"):
        out = attention.FUNCTIONS[name](None, q, k, v, None)[0]
        assert out.shape == reference.shape and torch.equal(out, reference), name
