"""Model shapes, their parameter counts, and presets.

Conventions (the same everywhere in `gqa`):
  L layers, d hidden size, n_h query heads, n_kv KV heads, d_h head dim (free, not d/n_h),
  d_ff SwiGLU width (three d x d_ff matrices), V vocabulary.

Parameter counts follow the rows of the paper's Table 2, with the FFN's three SwiGLU matrices.
`ParamCounts.total` counts a tied embedding once; `non_embedding` excludes the input embedding and the
output projection. RMSNorm gains ((2L + 1)·d values) are not in the paper's Table 2: they are kept apart
in `norms`, and `numel` (= total + norms) is the exact number of values a built model holds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

PAPER_VOCAB = 50_304  # GPT-2 tokenizer padded to a multiple of 64 (paper, Sec. 4)
PAPER_HEAD_DIM = 64


def paper_ffn_width(d_model: int, multiple: int = 32) -> int:
    """SwiGLU width of the paper: 8d/3 rounded up to a multiple of 32 (Llama's rounding)."""
    return multiple * math.ceil(8 * d_model / 3 / multiple)


def check_heads(n_heads: int, n_kv_heads: int) -> None:
    """Raise ValueError unless H = (n_h, n_kv) is a valid grouped-query configuration."""
    for name, value in (("n_heads", n_heads), ("n_kv_heads", n_kv_heads)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n_kv_heads < 1 or n_heads < 1:
        raise ValueError(f"head counts must be >= 1, got n_heads={n_heads}, n_kv_heads={n_kv_heads}")
    if n_heads % n_kv_heads != 0:
        raise ValueError(
            f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}: "
            "each KV head must serve the same number of query heads"
        )


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts by component (values, not bytes)."""

    embedding: int  # input embedding d·V (also the output projection when tied)
    attention: int  # Q, K, V, O projections: 2·L·d·d_h·(n_h + n_kv), plus QKV biases if any
    ffn: int  # SwiGLU: 3·L·d·d_ff
    output: int  # untied output projection d·V; 0 when tied
    norms: int  # RMSNorm gains (2L + 1)·d; not in the paper's Table 2

    @property
    def total(self) -> int:
        """Table 2 sum: every weight matrix, tied embedding counted once (no norms)."""
        return self.embedding + self.attention + self.ffn + self.output

    @property
    def non_embedding(self) -> int:
        """Excludes input embedding and output projection; the N of the paper's scaling fits."""
        return self.attention + self.ffn

    @property
    def numel(self) -> int:
        """Every value a built model holds (total + norms)."""
        return self.total + self.norms


@dataclass(frozen=True)
class Shape:
    """A Llama-style decoder with grouped-query attention and a free head dim."""

    layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int = PAPER_HEAD_DIM
    d_ff: int | None = None  # None: the paper's rule, paper_ffn_width(d_model)
    vocab: int = PAPER_VOCAB
    tied: bool = True
    qkv_bias: bool = False  # Qwen2-style biases on the Q, K, V projections
    o_bias: bool = False  # a bias on the output projection too (Llama's attention_bias sets both)
    qk_norm: bool = False  # Qwen3-style RMSNorm of queries and keys per head (2·d_h gains per layer)
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("layers", "d_model", "head_dim", "vocab"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"d_ff must be a positive integer, got {self.d_ff!r}")
        check_heads(self.n_heads, self.n_kv_heads)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", paper_ffn_width(self.d_model))

    @property
    def heads(self) -> tuple[int, int]:
        return (self.n_heads, self.n_kv_heads)

    @property
    def group_size(self) -> int:
        """Query heads per KV head, n_h / n_kv."""
        return self.n_heads // self.n_kv_heads

    def with_heads(self, n_heads: int, n_kv_heads: int) -> Shape:
        """Same backbone, another head configuration H = (n_h, n_kv)."""
        name = f"{self.name.split('@')[0]}@{n_heads},{n_kv_heads}" if self.name else ""
        return replace(self, n_heads=n_heads, n_kv_heads=n_kv_heads, name=name)

    def params(self) -> ParamCounts:
        L, d, d_h = self.layers, self.d_model, self.head_dim
        attention = 2 * L * d * d_h * (self.n_heads + self.n_kv_heads)
        if self.qkv_bias:
            attention += L * d_h * (self.n_heads + 2 * self.n_kv_heads)
        if self.o_bias:
            attention += L * d
        return ParamCounts(
            embedding=d * self.vocab,
            attention=attention,
            ffn=3 * L * d * self.d_ff,
            output=0 if self.tied else d * self.vocab,
            norms=(2 * L + 1) * d + (2 * L * d_h if self.qk_norm else 0),
        )

    def describe(self) -> str:
        tie = "tied" if self.tied else "untied"
        extras = [name for name, on in (("QKV bias", self.qkv_bias), ("O bias", self.o_bias),
                                        ("QK norm", self.qk_norm)) if on]
        return (
            f"L={self.layers}, d={self.d_model}, n_h={self.n_heads}, n_kv={self.n_kv_heads}, "
            f"d_h={self.head_dim}, d_ff={self.d_ff}, V={self.vocab}, {tie}"
        ) + "".join(f", {e}" for e in extras)

    def to_dict(self) -> dict:
        return asdict(self)


# --- Presets -------------------------------------------------------------------------------------

# Table 9 of the paper: scaling-run shapes (label = 12·L·d² non-embedding; MHA has n_h = d/64).
PAPER_SCALING_SHAPES: dict[str, tuple[int, int]] = {
    "3m": (4, 256),
    "19m": (6, 512),
    "85m": (12, 768),
    "150m": (12, 1024),
    "200m": (16, 1024),
    "470m": (24, 1280),
    "680m": (24, 1536),
    "1.2b": (36, 1536),
}
# Table 7 of the paper: aspect-ratio anchors for larger N (used by the cost search only).
PAPER_ANCHOR_SHAPES: dict[str, tuple[int, int]] = {
    "1.8b": (36, 2048),
    "4b": (48, 2560),
    "6b": (54, 3072),
    "13b": (64, 4096),
    "33b": (72, 6144),
    "64b": (80, 8192),
}


@dataclass(frozen=True)
class PublicModel:
    """A released model, transcribed from its published config.json."""

    shape: Shape
    published_params: int  # total parameters as published (safetensors metadata / model card)
    source: str
    max_position: int | None = None  # max_position_embeddings of the published config


def _public(name: str, published: int, source: str, max_position: int, **kw) -> PublicModel:
    return PublicModel(Shape(name=name, **kw), published, source, max_position)


PUBLIC_MODELS: dict[str, PublicModel] = {
    m.shape.name: m
    for m in (
        _public("llama-3.2-1b", 1_235_814_400, "meta-llama/Llama-3.2-1B config.json", max_position=131_072,
                layers=16, d_model=2048, n_heads=32, n_kv_heads=8, head_dim=64, d_ff=8192,
                vocab=128_256, tied=True),
        _public("llama-3.2-3b", 3_212_749_824, "meta-llama/Llama-3.2-3B config.json", max_position=131_072,
                layers=28, d_model=3072, n_heads=24, n_kv_heads=8, head_dim=128, d_ff=8192,
                vocab=128_256, tied=True),
        _public("llama-3.1-8b", 8_030_261_248, "meta-llama/Llama-3.1-8B config.json", max_position=131_072,
                layers=32, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, d_ff=14_336,
                vocab=128_256, tied=False),
        _public("llama-3.1-70b", 70_553_706_496, "meta-llama/Llama-3.1-70B config.json", max_position=131_072,
                layers=80, d_model=8192, n_heads=64, n_kv_heads=8, head_dim=128, d_ff=28_672,
                vocab=128_256, tied=False),
        _public("qwen2.5-7b", 7_615_616_512, "Qwen/Qwen2.5-7B config.json", max_position=131_072,
                layers=28, d_model=3584, n_heads=28, n_kv_heads=4, head_dim=128, d_ff=18_944,
                vocab=152_064, tied=False, qkv_bias=True),
        _public("mistral-7b-v0.3", 7_248_023_552, "mistralai/Mistral-7B-v0.3 config.json", max_position=32_768,
                layers=32, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, d_ff=14_336,
                vocab=32_768, tied=False),
    )
}


def record_shape(record: Mapping) -> Shape:
    """The exact shape a run record (`gqa.runs.RECORD_SCHEMA`) was trained with, tied embedding or not."""
    return Shape(record["layers"], record["d_model"], record["n_heads"], record["n_kv_heads"],
                 head_dim=record["head_dim"], d_ff=record["d_ff"], vocab=record["vocab"],
                 tied=record["config"].get("tied", True))


def paper_shape(label: str, n_heads: int | None = None, n_kv_heads: int | None = None) -> Shape:
    """A Table 9 or Table 7 backbone; MHA (n_h = n_kv = d/64) unless heads are given."""
    key = label.lower().removeprefix("paper-")
    table = {**PAPER_SCALING_SHAPES, **PAPER_ANCHOR_SHAPES}
    if key not in table:
        raise ValueError(f"unknown paper shape {label!r}; known: {', '.join(table)}")
    layers, d_model = table[key]
    mha = d_model // PAPER_HEAD_DIM
    n_heads = mha if n_heads is None else n_heads
    n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
    shape = Shape(layers, d_model, n_heads, n_kv_heads, name=f"paper-{key}")
    if (n_heads, n_kv_heads) != (mha, mha):
        shape = replace(shape, name=f"paper-{key}@{n_heads},{n_kv_heads}")
    return shape


def preset_names() -> list[str]:
    paper = [f"paper-{k}" for k in {**PAPER_SCALING_SHAPES, **PAPER_ANCHOR_SHAPES}]
    return paper + list(PUBLIC_MODELS)


def get_preset(name: str) -> Shape:
    """Look up a preset by name (case-insensitive): `paper-<label>` or a public model."""
    key = name.lower()
    if key in PUBLIC_MODELS:
        return PUBLIC_MODELS[key].shape
    if key.startswith("paper-"):
        return paper_shape(key)
    raise ValueError(f"unknown preset {name!r}; run `gqa cost --list-presets` to see the names")


# --- Appendix B.1: parameter budget -> shape ------------------------------------------------------


Anchors = Sequence[tuple[float, float]]  # (non-embedding N, aspect ratio d/L), sorted by N


def anchors_from_shapes(shapes: list[tuple[int, int]], head_dim: int = PAPER_HEAD_DIM) -> Anchors:
    """Aspect-ratio anchors from (layers, d_model) pairs, each counted as MHA with n_h = d/d_h."""
    points = []
    for layers, d_model in shapes:
        heads = max(1, d_model // head_dim)
        shape = Shape(layers, d_model, heads, heads, head_dim=head_dim)
        points.append((float(shape.params().non_embedding), d_model / layers))
    return sorted(points)


@functools.cache
def paper_anchors() -> Anchors:
    """The paper's Table 9 and Table 7 shapes as aspect-ratio anchors."""
    return tuple(anchors_from_shapes(list({**PAPER_SCALING_SHAPES, **PAPER_ANCHOR_SHAPES}.values())))


def aspect_ratio_for(n_non_embedding: float, anchors: Anchors | None = None) -> float:
    """d/L for a model of N non-embedding parameters: linear in log N between anchor shapes (the
    paper's by default). Outside the anchors' range the nearest end's ratio is used.
    """
    anchors = anchors or paper_anchors()
    logn = math.log(n_non_embedding)
    if logn <= math.log(anchors[0][0]):
        return anchors[0][1]
    for (n0, r0), (n1, r1) in zip(anchors, anchors[1:]):
        if logn <= math.log(n1):
            t = (logn - math.log(n0)) / (math.log(n1) - math.log(n0))
            return r0 + t * (r1 - r0)
    return anchors[-1][1]


def non_embedding_params(layers: float, d_model: float, n_heads: int, n_kv_heads: int,
                         head_dim: int = PAPER_HEAD_DIM) -> float:
    """N_nonemb = L·(2·d·d_h·(n_h + n_kv) + 3·d·8d/3), with the unrounded SwiGLU width."""
    return layers * (2 * d_model * head_dim * (n_heads + n_kv_heads) + 8 * d_model**2)


def solve_layers(n_non_embedding: float, n_heads: int, n_kv_heads: int,
                 head_dim: int = PAPER_HEAD_DIM, anchors: Anchors | None = None) -> tuple[float, float]:
    """Continuous (L, d) with d = r(N)·L whose non-embedding count equals N.

    With d = r·L the count is N = 8r²L³ + 2r·d_h·(n_h + n_kv)·L², increasing in L: Newton's method
    from the cubic term's root converges in a few steps.
    """
    check_heads(n_heads, n_kv_heads)
    if not n_non_embedding > 0:
        raise ValueError(f"parameter budget must be positive, got {n_non_embedding!r}")
    ratio = aspect_ratio_for(n_non_embedding, anchors)
    cubic, square = 8 * ratio**2, 2 * ratio * head_dim * (n_heads + n_kv_heads)
    layers = (n_non_embedding / cubic) ** (1 / 3)  # an upper bound: Newton descends monotonically
    for _ in range(60):
        f = cubic * layers**3 + square * layers**2 - n_non_embedding
        step = f / (3 * cubic * layers**2 + 2 * square * layers)
        layers -= step
        if abs(step) <= 1e-15 * layers:
            break
    return layers, ratio * layers


def shape_for_params(n_non_embedding: float, n_heads: int, n_kv_heads: int,
                     head_dim: int = PAPER_HEAD_DIM, vocab: int = PAPER_VOCAB,
                     anchors: Anchors | None = None) -> Shape:
    """The paper's Appendix B.1 conversion of a non-embedding budget into a buildable shape.

    Starts from the continuous solution of `solve_layers`; tries the integer L around it and, for each,
    the multiples of 32 for d around the exact root; keeps the shape whose non-embedding count (with the
    paper's d_ff rule) is closest to the budget. Cost searches use the continuous solution instead.
    """
    layers_f, _ = solve_layers(n_non_embedding, n_heads, n_kv_heads, head_dim, anchors)
    best: Shape | None = None
    for layers in {max(1, math.floor(layers_f) + k) for k in (-1, 0, 1, 2)}:
        lo, hi = 1.0, max(1e7, float(n_non_embedding))  # bisection on d: the count is increasing in d
        for _ in range(100):
            mid = (lo + hi) / 2
            if non_embedding_params(layers, mid, n_heads, n_kv_heads, head_dim) < n_non_embedding:
                lo = mid
            else:
                hi = mid
        for d_model in {max(32, 32 * math.floor(lo / 32)), max(32, 32 * math.ceil(lo / 32))}:
            shape = Shape(layers, d_model, n_heads, n_kv_heads, head_dim=head_dim, vocab=vocab,
                          name=f"budget-{n_non_embedding:.3g}@{n_heads},{n_kv_heads}")
            error = abs(shape.params().non_embedding - n_non_embedding)
            if best is None or error < abs(best.params().non_embedding - n_non_embedding):
                best = shape
    assert best is not None
    return best


def shapes_at_loss(predict, target_loss: float, n_heads: int, n_kv_heads: int, *, head_dim: int = PAPER_HEAD_DIM,
                   vocab: int = PAPER_VOCAB, anchors: Anchors | None = None, d_step: int = 1,
                   max_layers: int = 64, loss_tolerance: float = 0.01) -> Shape:
    """The buildable shape (integer L, d a multiple of `d_step`, the paper's d_ff rule) whose predicted loss
    `predict(N_nonemb)` is closest to `target_loss`, searched over depth and width together.

    Rounding d alone (as `shape_for_params` does) can miss the target by a large factor in N at tiny sizes:
    with d a multiple of 32 a 100K-parameter budget has few shapes near it. Here every L up to `max_layers`
    and every d is tried; among the shapes whose predicted loss is within `loss_tolerance` of the target,
    the one whose aspect ratio d/L is nearest (in log) to the Appendix B.1 ratio at that size is kept; if
    none is that close, the shape nearest in loss. Loss in nats, N non-embedding parameters.
    """
    check_heads(n_heads, n_kv_heads)
    best_close: tuple[float, Shape] | None = None
    best_any: tuple[float, Shape] | None = None
    for layers in range(1, max_layers + 1):
        d_model = d_step
        while True:
            shape = Shape(layers, d_model, n_heads, n_kv_heads, head_dim=head_dim, vocab=vocab,
                          name=f"loss-{target_loss:.3f}@{n_heads},{n_kv_heads}")
            n = shape.params().non_embedding
            miss = float(predict(n)) - target_loss
            if best_any is None or abs(miss) < best_any[0]:
                best_any = (abs(miss), shape)
            if abs(miss) <= loss_tolerance:
                off = abs(math.log(d_model / layers / aspect_ratio_for(n, anchors)))
                if best_close is None or off < best_close[0]:
                    best_close = (off, shape)
            if miss < -loss_tolerance:  # loss falls with d: wider shapes only move further below the target
                break
            d_model += d_step
    assert best_any is not None
    return (best_close or best_any)[1]
