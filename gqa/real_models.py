"""Real architectures measured on this machine, beside what the cost model predicts for them.

Each model is built by transformers from its published configuration with random weights (no download),
in bf16, and run with PyTorch's SDPA attention: a prefill of T random tokens (batch 1), then a few
decode steps over the cache it filled (the prefill computes the last position's logits only, as a serving
engine does). Measured: the bytes of the cache tensors, the process's peak
resident memory during the prefill (Linux's VmHWM, reset before each run), the prefill time and the
decode tokens/s. Predicted by `gqa cost` (`gqa.architecture`) from the same config: the KV bytes (exact:
transformers keeps W − 1 tokens of a sliding-window layer between steps, `gqa cost` the W a serving engine
allocates, so the prediction uses min(T, W − 1) for those layers), the weights and cache in memory, and
the ideal decode step at this machine's measured read bandwidth (memory-bound on CPUs).

Units: bytes, seconds, tokens per second. Results go to data/profiles/real_models_<machine>.csv through
`gqa bench real`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from gqa.units import format_tokens

# Published configurations (the config.json of each model on the Hugging Face Hub), as transformers'
# config classes take them.
MODELS: dict[str, tuple[str, dict]] = {
    "qwen3-0.6b": ("Qwen3Config", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                       num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                                       max_position_embeddings=40960, tie_word_embeddings=True)),
    "llama-3.2-1b": ("LlamaConfig", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                                         vocab_size=128256, max_position_embeddings=131072, tie_word_embeddings=True,
                                         rope_theta=500000.0)),
    "gemma-3-1b": ("Gemma3TextConfig", dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                                            num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                                            vocab_size=262144, sliding_window=512, max_position_embeddings=32768,
                                            tie_word_embeddings=True)),
}
CONTEXTS = (1024, 2048, 4096, 8192, 16384)


@dataclass(frozen=True)
class Measurement:
    model: str
    context: int
    kv_bytes: int  # the cache tensors after the prefill
    kv_bytes_predicted: int  # gqa cost's KV bytes at this context (transformers' W − 1 for sliding layers)
    weight_bytes: int  # the parameters as built (bf16)
    peak_rss_bytes: int  # the process's peak resident memory during the prefill
    memory_predicted_bytes: int  # gqa cost: weights (Table 2 counts + norms) and the cache, bf16
    overhead_bytes: int  # peak RSS less the prediction: activations, the runtime, the allocator
    prefill_s: float
    decode_step_s: float  # mean of the timed decode steps, each one token with the cache
    decode_tokens_per_s: float
    bandwidth_bytes_per_s: float  # this machine's measured read bandwidth (numpy sum of a large array)
    decode_step_predicted_s: float  # bytes a decode step reads (weights but a lookup embedding, cache) / bandwidth
    decode_vs_roofline: float  # measured step / predicted step (1 = at the roofline)


FIELDS = tuple(f.name for f in fields(Measurement))  # the CSV's columns


def read_bandwidth(megabytes: int = 1024, repeats: int = 5) -> float:
    """Bytes per second this process reads from memory: the best of `repeats` sums of a large array."""
    data = np.ones(megabytes * (1 << 20) // 8)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - start)
    return data.nbytes / best


def _peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _config_folder(name: str, folder: Path) -> Path:
    import transformers

    class_name, values = MODELS[name]
    folder.mkdir(parents=True, exist_ok=True)
    getattr(transformers, class_name)(**values).save_pretrained(str(folder))
    return folder


def measure(name: str, contexts=CONTEXTS, *, decode_steps: int = 4, work: Path, bandwidth: float,
            log=print) -> list[Measurement]:
    """Build `name` (random weights, bf16) and measure it at each context (see the module doc)."""
    import torch
    import transformers

    from gqa import architecture
    from gqa.hf_config import model_from_config

    folder = _config_folder(name, work / name)
    arch = model_from_config(folder).architecture
    class_name, values = MODELS[name]
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, class_name)(**values),
                                                          dtype=torch.bfloat16, attn_implementation="sdpa").eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    out = []
    for context in contexts:
        tokens = torch.randint(0, values["vocab_size"], (1, context))
        _peak_rss_reset()
        with torch.no_grad():
            start = time.perf_counter()
            result = model(tokens, use_cache=True, logits_to_keep=1)  # the next token's logits, as a server computes
            prefill_s = time.perf_counter() - start
            peak = _peak_rss()
            cache = result.past_key_values
            kv = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
            step_times = []
            next_token = tokens[:, -1:]
            for _ in range(decode_steps + 1):  # the first step warms up
                start = time.perf_counter()
                result = model(next_token, past_key_values=cache, use_cache=True)
                step_times.append(time.perf_counter() - start)
                cache = result.past_key_values
        held = [min(context, w - 1) if w is not None else context for w in arch.windows]  # transformers' W − 1
        kv_predicted = 2 * sum(layer.cache_values * n for layer, n in zip(arch.layers, held))
        memory_predicted = 2 * arch.numel + kv_predicted
        decode_step = float(np.mean(step_times[1:]))
        read = architecture.weights_read(arch, 1) * 2 + kv_predicted  # bf16: 2 bytes a value
        predicted_step = read / bandwidth
        out.append(Measurement(name, context, kv, kv_predicted, weight_bytes, peak, memory_predicted,
                               peak - memory_predicted, prefill_s, decode_step, 1 / decode_step, bandwidth,
                               predicted_step, decode_step / predicted_step))
        log(f"{name} at {context:,}: KV {kv:,} B (predicted {kv_predicted:,}), peak RSS {peak / 1e9:.2f} GB, prefill "
            f"{prefill_s:.1f} s, decode {1 / decode_step:.2f} tokens/s "
            f"({decode_step / predicted_step:.2f}x the roofline)")
        del result, cache
    return out


def write_csv(rows: list[Measurement], path: Path, machine: dict) -> None:
    """Rows and a sidecar JSON of the machine, each written atomically."""
    from gqa.paths import write_text_atomic
    from gqa.profiling import write_rows

    write_rows([asdict(row) for row in rows], path)
    write_text_atomic(path.with_suffix(".json"), json.dumps(machine, indent=2))


def load(directory: Path | None = None):
    """(the rows of the newest data/profiles/real_models_*.csv as a DataFrame, its machine record), or
    (None, None) when none was measured."""
    import pandas as pd

    from gqa.paths import PROFILES_DATA_DIR

    paths = sorted((directory or PROFILES_DATA_DIR).glob("real_models_*.csv"), key=lambda p: p.stat().st_mtime)
    if not paths:
        return None, None
    path = paths[-1]
    frame = pd.read_csv(path)
    missing = sorted(set(FIELDS) - set(frame.columns))
    if missing:
        raise ValueError(f"{path.name}: columns {', '.join(missing)} missing; rerun `gqa bench real`")
    meta = path.with_suffix(".json")
    machine = json.loads(meta.read_text()) if meta.exists() else {}
    return frame, {**machine, "source": path.name}


def summary(frame, machine: dict) -> dict[str, str]:
    """The sentences chapter 2 quotes about the real models, computed from the measured rows."""
    from gqa.units import format_bytes, format_number

    exact = int((frame["kv_bytes"] == frame["kv_bytes_predicted"]).sum())
    over = frame["overhead_bytes"]
    peak_ratio = frame["peak_rss_bytes"] / frame["memory_predicted_bytes"]
    ratio = frame["decode_vs_roofline"]
    models = ", ".join(dict.fromkeys(frame["model"]))
    contexts = sorted(set(frame["context"]))
    by_model = frame.sort_values("context").groupby("model", sort=False)
    ends = by_model["decode_vs_roofline"].agg(["first", "last"])
    trend = "; ".join(f"{name} {format_number(row['first'])}x at {format_tokens(contexts[0])} and "
                      f"{format_number(row['last'])}x at {format_tokens(contexts[-1])}"
                      for name, row in ends.iterrows())
    growth = by_model["overhead_bytes"].agg(["first", "last"])
    return {
        "real_what": (f"{models} at {contexts[0]:,} to {contexts[-1]:,} tokens, measured by gqa bench real on "
                      f"{machine.get('cpu', 'this machine')} ({machine.get('threads', '?')} threads; "
                      f"{machine.get('source', '')})"),
        "real_kv": (f"the cache tensors after the prefill equal the predicted KV bytes in {exact} of {len(frame)} "
                    "measurements" + ("" if exact == len(frame) else ": the others differ")),
        "real_memory": (f"peak resident memory is {format_number(peak_ratio.min())} to "
                        f"{format_number(peak_ratio.max())} times the predicted weights and cache, "
                        f"{format_bytes(over.min())} to {format_bytes(over.max())} more; the excess grows with the "
                        f"context (by {format_bytes((growth['last'] - growth['first']).min())} to "
                        f"{format_bytes((growth['last'] - growth['first']).max())} from the shortest to the longest): "
                        "the prefill's activations, beside the Python process and PyTorch's libraries, so the cache "
                        "alone does not set the peak"),
        "real_decode": (f"decode steps take {format_number(ratio.min())} to {format_number(ratio.max())} times the "
                        f"roofline at the measured read bandwidth of "
                        f"{format_bytes(frame['bandwidth_bytes_per_s'].iloc[0])}/s (one thread summing an array: "
                        "a reference, not a bound" + ("; one decode beats it" if ratio.min() < 1 else "")
                        + f"), and the ratio follows the cache: {trend}; each is the mean of a few timed steps on a "
                        "shared VM"),
    }
