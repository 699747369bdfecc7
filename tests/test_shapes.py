import math

import pytest

from gqa.shapes import (
    PUBLIC_MODELS,
    Shape,
    aspect_ratio_for,
    get_preset,
    paper_ffn_width,
    paper_shape,
    preset_names,
    shape_for_params,
    solve_layers,
)


def test_paper_ffn_width_rounds_8d_over_3_up_to_32():
    assert paper_ffn_width(1536) == 4096  # 8*1536/3 = 4096 exactly
    assert paper_ffn_width(256) == 704  # 682.7 -> 704
    assert paper_ffn_width(2048) == 5472  # 5461.3 -> 5472


def test_param_counts_by_hand():
    # L=4, d=256, H=(4,1), d_h=32, d_ff=704, V=1000, tied
    s = Shape(4, 256, 4, 1, head_dim=32, vocab=1000)
    c = s.params()
    assert c.attention == 2 * 4 * 256 * 32 * (4 + 1) == 327_680
    assert c.ffn == 3 * 4 * 256 * 704 == 2_162_688
    assert c.embedding == 256_000 and c.output == 0
    assert c.total == 2_746_368
    assert c.non_embedding == 2_490_368
    assert c.norms == 9 * 256
    untied = Shape(4, 256, 4, 1, head_dim=32, vocab=1000, tied=False).params()
    assert untied.total == c.total + 256_000 and untied.non_embedding == c.non_embedding


@pytest.mark.parametrize("name", sorted(PUBLIC_MODELS))
def test_public_models_match_published_totals(name):
    model = PUBLIC_MODELS[name]
    numel = model.shape.params().numel
    assert abs(numel / model.published_params - 1) < 0.01


def test_head_dim_is_free_of_hidden_size():
    s = Shape(2, 512, 4, 2, head_dim=96)  # 4*96 = 384 != 512
    assert s.params().attention == 2 * 2 * 512 * 96 * 6


@pytest.mark.parametrize("heads, match", [((6, 4), "n_heads=6.*n_kv_heads=4"),
                                          ((8, 0), "n_kv_heads=0"),
                                          ((0, 1), "n_heads=0")])
def test_invalid_heads_raise_naming_values(heads, match):
    with pytest.raises(ValueError, match=match):
        Shape(4, 256, *heads)


@pytest.mark.parametrize("field, kwargs", [("layers", dict(layers=0)), ("d_model", dict(d_model=-5)),
                                           ("head_dim", dict(head_dim=0))])
def test_invalid_dimensions_raise(field, kwargs):
    args = dict(layers=4, d_model=256, n_heads=4, n_kv_heads=4) | kwargs
    with pytest.raises(ValueError, match=field):
        Shape(**args)


def test_presets():
    assert "paper-1.2b" in preset_names() and "llama-3.1-8b" in preset_names()
    s = get_preset("paper-1.2b")
    assert (s.layers, s.d_model, s.heads) == (36, 1536, (24, 24))
    g = paper_shape("1.2b", 32, 8)
    assert g.heads == (32, 8) and g.name == "paper-1.2b@32,8"
    assert s.with_heads(8, 1).heads == (8, 1)
    with pytest.raises(ValueError, match="nope"):
        get_preset("nope")
    # Table 9's labels are 12*L*d^2; our counts (SwiGLU with rounded d_ff) stay within 3% of them.
    for label in ("3m", "19m", "85m", "150m", "680m"):
        sh = paper_shape(label)
        assert abs(sh.params().non_embedding / (12 * sh.layers * sh.d_model**2) - 1) < 0.03


def test_aspect_ratio_hits_anchors_and_interpolates():
    for label in ("85m", "1.2b", "13b"):
        sh = paper_shape(label)
        assert aspect_ratio_for(sh.params().non_embedding) == pytest.approx(sh.d_model / sh.layers)
    lo, hi = paper_shape("1.2b"), paper_shape("1.8b")
    mid_n = math.sqrt(lo.params().non_embedding * hi.params().non_embedding)
    mid = aspect_ratio_for(mid_n)
    assert min(1536 / 36, 2048 / 36) < mid < max(1536 / 36, 2048 / 36)
    assert aspect_ratio_for(1.0) == 256 / 4  # clamped below the smallest shape


@pytest.mark.parametrize("budget", [3e6, 2e7, 1e8, 1.2e9, 1.8e9, 1e10])
@pytest.mark.parametrize("heads", [(8, 1), (32, 8), (1, 1)])
def test_shape_for_params_meets_budget(budget, heads):
    layers, d = solve_layers(budget, *heads)
    assert layers * (2 * d * 64 * sum(heads) + 8 * d * d) == pytest.approx(budget, rel=1e-9)
    shape = shape_for_params(budget, *heads)
    assert shape.heads == heads and shape.d_model % 32 == 0
    # d moves in steps of 32: coarse for a few million parameters, fine beyond
    assert abs(shape.params().non_embedding / budget - 1) < (0.05 if budget < 1e7 else 0.02)


def test_shape_for_params_grows_with_budget():
    layers = [solve_layers(n, 8, 1)[0] for n in (1e7, 1e8, 1e9, 1e10)]
    assert layers == sorted(layers)
    with pytest.raises(ValueError, match="budget"):
        solve_layers(0, 8, 1)


def test_shapes_at_loss_hits_the_loss_and_keeps_the_nearest_aspect_ratio():
    """Against a brute-force scan of every (L, d) written independently here."""
    from gqa.shapes import shapes_at_loss

    def predict(n):
        return (2e4 / n) ** 0.25 + 1.0  # a law with b = 0.25, E = 1

    target = 2.0  # N* = 2e4 non-embedding parameters
    got = shapes_at_loss(predict, target, 8, 2, head_dim=16, vocab=2048)
    close = []
    for layers in range(1, 65):
        for d in range(1, 400):
            s = Shape(layers, d, 8, 2, head_dim=16, vocab=2048)
            n = s.params().non_embedding
            if abs(predict(n) - target) <= 0.01:
                close.append((abs(math.log(d / layers / aspect_ratio_for(n))), s))
    assert close
    want = min(close, key=lambda t: t[0])[1]
    assert (got.layers, got.d_model) == (want.layers, want.d_model)
    assert abs(predict(got.params().non_embedding) - target) <= 0.01


@pytest.mark.parametrize("n", [1e12, 3e14, 1e18])
def test_the_nearest_buildable_shape_of_a_huge_budget_is_near_it(n):
    """The bisection on d once stopped at d = 1e7, so a budget of 1e18 came out a million times smaller."""
    from gqa.shapes import shape_for_params

    shape = shape_for_params(n, 8, 1)
    assert shape.params().non_embedding == pytest.approx(n, rel=0.02)


def test_counts_beyond_the_largest_prefix_are_powers_of_ten():
    from gqa.units import format_bytes, format_count

    assert format_count(1.2378e26) == "1.24e+26" and format_count(999e15) == "999 P"
    assert format_bytes(3e15) == "3.00 PB" and format_bytes(2.48e20) == "2.48e+20 B"
