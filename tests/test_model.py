"""The model built from a Shape: exact parameter count, backends, cache, save/load."""

import pytest
import torch

from gqa.model import build_model, load_model, set_attention, shape_of
from gqa.shapes import Shape

SHAPES = [Shape(2, 64, 4, 1, head_dim=24, vocab=97),  # d_h != d / n_h, multi-query
          Shape(2, 48, 4, 4, head_dim=16, vocab=50),  # MHA
          Shape(3, 64, 8, 2, head_dim=8, vocab=61, tied=False),
          Shape(2, 96, 6, 2, head_dim=20, vocab=70)]  # n_h does not divide d: decoupled for real


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.describe())
def test_parameter_count_is_exact(shape):
    model = build_model(shape)
    assert model.num_parameters() == shape.params().numel
    assert shape_of(model) == shape
    cfg = model.config
    assert cfg.rope_parameters["rope_theta"] == 500_000 and cfg.rms_norm_eps == 1e-6
    assert not any("bias" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.describe())
def test_every_backend_matches_transformers_eager(shape):
    model = build_model(shape, seed=3).eval()
    ids = torch.randint(0, shape.vocab, (2, 12), generator=torch.Generator().manual_seed(0))
    model.set_attn_implementation("eager")  # transformers' own reference Llama attention
    with torch.no_grad():
        reference = model(ids).logits
    for backend in ("eager", "sdpa", "repeat"):
        set_attention(model, backend)
        with torch.no_grad():
            logits = model(ids).logits
        torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())


@pytest.mark.parametrize("backend", ["eager", "sdpa", "repeat"])
def test_cached_decode_equals_full_forward(backend):
    shape = SHAPES[0]
    model = build_model(shape, attention_backend=backend, seed=4).eval()
    ids = torch.randint(0, shape.vocab, (1, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids).logits
        out = model(ids[:, :6], use_cache=True)
        cache, steps = out.cache, [out.logits]
        for i in range(6, 10):
            out = model(ids[:, i:i + 1], cache=cache, use_cache=True)
            cache = out.cache
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5 * full.abs().max().item())


def test_generate_and_save_load_round_trip(tmp_path):
    shape = SHAPES[0]
    model = build_model(shape, seed=5).eval()
    prompt = torch.tensor([[1, 2, 3, 4]])
    generated = model.generate(prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape == (1, 9)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = load_model(tmp_path, attention_backend="eager").eval()
    assert shape_of(loaded) == shape
    with torch.no_grad():
        torch.testing.assert_close(loaded(prompt).logits, model(prompt).logits, rtol=1e-5, atol=1e-6)
    assert torch.equal(loaded.generate(prompt, max_new_tokens=5, do_sample=False), generated)


def test_seed_determines_weights_and_biased_shapes_are_refused():
    a, b = build_model(SHAPES[1], seed=7), build_model(SHAPES[1], seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="attention biases"):
        build_model(Shape(2, 64, 4, 2, qkv_bias=True))
