"""Training and sweep settings, without torch: what a run is, how it is named, and its schedule.

`TrainConfig` holds every setting of one training run. The settings that determine the trained model make
its identity (`identity`, hashed by `run_id`); the execution settings (`EXECUTION`: backend, device,
evaluation and checkpoint cadence, compilation, labels) do not. `sweep_configs` expands a profile's
`sweep` section into its runs. `wsd_lr` is the paper's learning-rate schedule. Nothing here imports the
ML stack: the run store (`gqa.runs`), profiles and the commands that only list or check runs read this
module, and `gqa.train` trains what it describes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields

from gqa.data import DataSpec
from gqa.shapes import Shape, check_heads

# The attention backends a run may name (gqa.attention registers one implementation for each).
ATTENTION_BACKENDS = ("eager", "sdpa", "repeat", "flash")
# The element types the attention benchmark times (gqa.machine maps each to its torch dtype).
ATTENTION_DTYPES = ("fp32", "bf16", "fp16")


@functools.cache
def _float_fields(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass whose type is float (or float | None), from its resolved type hints."""
    def options(hint):
        return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)

    return tuple(name for name, hint in typing.get_type_hints(cls).items() if float in options(hint))


def valid_device(device: object) -> bool:
    """cpu, cuda, or cuda:N: the devices training and profiling run on."""
    return isinstance(device, str) and re.fullmatch(r"cpu|cuda(:\d+)?", device) is not None


@dataclass
class TrainConfig:
    # model (the vocabulary comes from the tokenizer)
    layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int = 64
    d_ff: int | None = None
    tied: bool = True
    # data
    corpus: str = "python-stdlib"
    vocab_size: int = 4096
    val_percent: float = 2.0
    max_bytes: int | None = None
    context: int = 256
    batch_size: int = 16  # sequences per optimizer step, across all processes
    # budget and optimisation
    tokens: int | None = None  # None: tokens_per_param x non-embedding parameters
    tokens_per_param: float = 20.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.1
    decay_frac: float = 0.2
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    # execution (not part of the run's identity)
    attention: str = "sdpa"
    device: str = "cpu"
    eval_interval: int = 0  # steps between validation losses (0: only at the end)
    eval_tokens: int = 65_536  # validation tokens per evaluation
    checkpoint_every: int = 50  # steps between checkpoints
    log_every: int = 10  # steps between recorded training losses
    compile: bool = False  # torch.compile the training forward (same arithmetic; `gqa bench train --options`)
    extra: dict = field(default_factory=dict)  # free-form labels stored with the record

    EXECUTION = ("attention", "device", "eval_interval", "checkpoint_every", "log_every", "compile", "extra")

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        for name in _float_fields(type(self)):  # 20 and 20.0 are one setting: a number takes its field's type
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
        for name in ("context", "batch_size", "checkpoint_every", "log_every", "eval_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"tokens must be positive, got {self.tokens}")
        for name in ("lr", "tokens_per_param", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("weight_decay", "warmup_frac", "decay_frac", "min_lr_ratio"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        if self.eval_interval < 0:
            raise ValueError(f"eval_interval must be >= 0 (0: only at the end), got {self.eval_interval}")
        if not valid_device(self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if not (len(self.betas) == 2 and all(math.isfinite(b) and 0 <= b < 1 for b in self.betas)):
            raise ValueError(f"betas must be two numbers in [0, 1) (Adam's moment decays), got {list(self.betas)}")
        if self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_BACKENDS)}, got {self.attention!r}")
        if self.tokens is None and self.tokens_per_param * self.shape(self.vocab_size).params().non_embedding < 1:
            raise ValueError(f"tokens_per_param {self.tokens_per_param} gives no training tokens")
        if self.warmup_frac + self.decay_frac > 1:
            raise ValueError("warmup_frac + decay_frac must not exceed 1")
        self.shape(self.vocab_size)  # validates the shape

    def shape(self, vocab: int) -> Shape:
        return Shape(self.layers, self.d_model, self.n_heads, self.n_kv_heads, head_dim=self.head_dim,
                     d_ff=self.d_ff, vocab=vocab, tied=self.tied)

    def data_spec(self) -> DataSpec:
        return DataSpec(self.corpus, self.vocab_size, self.val_percent, self.max_bytes)

    def identity(self) -> dict:
        """Every field that determines the trained model (execution details left out)."""
        return {k: v for k, v in asdict(self).items() if k not in self.EXECUTION}

    def label(self) -> str:
        """A run's name for people: heads, layers, width, head dimension and seed."""
        return (f"H=({self.n_heads},{self.n_kv_heads}) L={self.layers} d={self.d_model} d_h={self.head_dim} "
                f"seed {self.seed}")

    def run_id(self) -> str:
        """The run's identity: a hash of every setting that determines the trained model, each number in
        its field's type (so 20 and 20.0 tokens per parameter are one run)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def settings_id(self) -> str:
        """Hash of every setting, execution ones included (evaluation changes the recorded curves)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def budget_tokens(self, vocab: int) -> int:
        if self.tokens is not None:
            return self.tokens
        return int(round(self.tokens_per_param * self.shape(vocab).params().non_embedding))

    def steps(self, vocab: int) -> int:
        return max(1, math.ceil(self.budget_tokens(vocab) / (self.batch_size * self.context)))

    def learning_rate(self, step: int, steps: int) -> float:
        """The learning rate of `step` (from 0) of a run of `steps` steps, by this config's WSD schedule."""
        return wsd_lr(step, steps, self.lr, warmup_frac=self.warmup_frac, decay_frac=self.decay_frac,
                      min_lr_ratio=self.min_lr_ratio)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**raw)


def wsd_lr(step: int, total_steps: int, max_lr: float, *, warmup_frac: float = 0.1,
           decay_frac: float = 0.2, min_lr_ratio: float = 0.1) -> float:
    """Warmup-stable-decay: linear warm-up, constant, cosine decay to min_lr_ratio x max_lr.

    `step` counts from 0; the LR of step 0 is max_lr / warmup_steps (never zero).
    """
    warmup = max(1, math.ceil(warmup_frac * total_steps)) if warmup_frac > 0 else 0
    decay = max(1, math.ceil(decay_frac * total_steps)) if decay_frac > 0 else 0
    if step < warmup:
        return max_lr * (step + 1) / warmup
    decay_start = total_steps - decay
    if step < decay_start or decay == 0:
        return max_lr
    progress = min(1.0, (step - decay_start + 1) / decay)
    floor = min_lr_ratio * max_lr
    return floor + (max_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def sweep_configs(section: dict) -> list[TrainConfig]:
    """Every run of a sweep section, sizes outermost (small runs first), then seeds, then head
    configurations (so a killed sweep has every head configuration of the first seed before the second)."""
    for key in ("heads", "sizes"):
        if not section.get(key):
            raise ValueError(f"sweep section needs a non-empty {key!r} list")
    shared = {**(section.get("data") or {}), **(section.get("train") or {})}
    seeds = section.get("seeds")
    if seeds is None:
        seeds = [shared.get("seed", 0)]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds)):
        raise ValueError(f"seeds must be a non-empty list of whole numbers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat, got {seeds}")
    configs = []
    for size in section["sizes"]:
        layers, d_model, *lr = size
        for seed in seeds:
            for n_heads, n_kv_heads in section["heads"]:
                settings = {**shared, "layers": layers, "d_model": d_model, "n_heads": n_heads,
                            "n_kv_heads": n_kv_heads, "seed": seed}
                if lr:
                    settings["lr"] = lr[0]
                configs.append(TrainConfig.from_dict(settings))
    return configs


@dataclass
class SweepConfig:
    """One attention benchmark sweep of `gqa profile` (a profile's `attention_profile` section; `gqa.profiling`
    runs it)."""

    device: str = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    n_heads: int = 16
    kv_heads: list[int] = field(default_factory=lambda: [2, 16])
    head_dim: int = 64
    decode_contexts: list[int] = field(default_factory=lambda: [1024, 4096, 16384, 32768, 65536])
    prefill_contexts: list[int] = field(default_factory=lambda: [512, 1024, 2048, 4096])
    backends: list[str] = field(default_factory=lambda: ["sdpa", "repeat", "eager"])
    max_working_bytes: float = 4e9  # skip a case whose analytic working set exceeds this
    min_seconds: float = 0.2  # time each case for at least this long
    bandwidth_rounds: int = 5  # rounds of the read-bandwidth measurement before the sweep (the fastest counts);
    # above 1 the bandwidth is also sampled again between groups of cases and at the end (a VM's drifts)

    def __post_init__(self) -> None:
        if not valid_device(self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.dtype not in ATTENTION_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(ATTENTION_DTYPES)}, got {self.dtype!r}")
        for name in ("batch", "n_heads", "head_dim", "bandwidth_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {getattr(self, name)!r}")
        for name in ("kv_heads", "decode_contexts", "prefill_contexts", "backends"):
            if not isinstance(getattr(self, name), list):
                raise ValueError(f"{name} must be a list, got {getattr(self, name)!r}")
        if not self.kv_heads or not self.backends or not (self.decode_contexts or self.prefill_contexts):
            raise ValueError("kv_heads, backends and at least one list of contexts must not be empty")
        for name in ("decode_contexts", "prefill_contexts"):
            bad = [t for t in getattr(self, name) if isinstance(t, bool) or not isinstance(t, int) or t < 1]
            if bad:
                raise ValueError(f"{name} must hold positive whole numbers of tokens, got {bad[0]!r}")
        unknown = [b for b in self.backends if b not in ATTENTION_BACKENDS]
        if unknown:
            raise ValueError(f"backends: unknown {unknown[0]!r}; choose from {', '.join(ATTENTION_BACKENDS)}")
        for name in ("max_working_bytes", "min_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for n_kv in self.kv_heads:
            check_heads(self.n_heads, n_kv)

    @classmethod
    def from_dict(cls, raw: dict) -> SweepConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown attention_profile keys: {', '.join(sorted(unknown))}")
        return cls(**raw)
