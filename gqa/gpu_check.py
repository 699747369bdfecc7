"""`make gpu-check`: what a short GPU lease should measure, in one command that installs nothing.

Run as `python -m gqa.gpu_check` from a checkout with the Python that has PyTorch (a CUDA build) and
transformers; nothing is installed or downloaded, and a missing package is named. Three parts, sized for
one H100 or H200 in under 8 minutes:

  1. the attention sweep in bf16: eager, sdpa, repeat (and flash where flash_attn imports), decode at 8K to
     128K tokens with n_h = 32 and n_kv from 1 to 32 (d_h = 128);
  2. Table 5's inference row as a model-level decode benchmark: the paper's (32, 8) at 36 x 1536 against
     (8, 1) at the size N* the paper's Figure 2 fits give at equal loss (2.615 at 128K), random weights,
     at batch 1 and at the largest batch whose caches fit beside the weights, tokens/s beside Eq. 4's
     memory ratio and the paper's 1.60x;
  3. a short training-throughput row: gqa's step under fp32 and bf16 autocast on a study-sized model.

It writes data/profiles/<device slug>_gpu-check.csv (the sweep) and data/profiles/gpu_check_<device
slug>.json (the rest and a summary), and prints the summary. `--dry-run` runs the same code on the CPU
at tiny sizes (a test runs it in CI) and writes under `--out` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

REQUIRED = ("torch", "transformers", "numpy", "pandas", "scipy", "yaml", "tqdm", "filelock")
PAPER_RATIO = 1.60  # Table 5: inference throughput of (8, 1) over (32, 8)


def missing_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _sizes(dry_run: bool) -> dict:
    if dry_run:
        return {"device": "cpu", "dtype": "bf16", "n_heads": 4, "kv_heads": [1, 4], "head_dim": 16,
                "decode_contexts": [256, 512], "prefill_contexts": [256], "context": 256, "steps": 2,
                "max_batch": 2, "train_steps": 2}
    return {"device": "cuda", "dtype": "bf16", "n_heads": 32, "kv_heads": [1, 2, 4, 8, 16, 32], "head_dim": 128,
            "decode_contexts": [8192, 16384, 32768, 65536, 131072], "prefill_contexts": [8192, 32768],
            "context": 131072, "steps": 32, "max_batch": 64, "train_steps": 20}


def attention_sweep(sizes: dict, out: Path, log) -> list[dict]:
    from gqa import profiling

    backends = ["eager", "sdpa", "repeat"] + (["flash"] if importlib.util.find_spec("flash_attn") else [])
    cfg = profiling.SweepConfig(device=sizes["device"], dtype=sizes["dtype"], n_heads=sizes["n_heads"],
                                kv_heads=sizes["kv_heads"], head_dim=sizes["head_dim"],
                                decode_contexts=sizes["decode_contexts"], prefill_contexts=sizes["prefill_contexts"],
                                backends=backends, max_working_bytes=6e10 if sizes["device"] == "cuda" else 2e8,
                                min_seconds=0.05, bandwidth_rounds=1)
    rows = profiling.run_sweep(cfg, log=lambda msg: log("  " + msg))
    profiling.write_rows(rows, out)
    log(f"  {len(rows)} rows -> {out}")
    return rows


def table5_shapes(dry_run: bool):
    """(baseline, ours): the paper's (32, 8) at 36 x 1536 and (8, 1) at its N* from the Figure 2 fits."""
    from gqa import search, sources
    from gqa.shapes import Shape, shapes_at_loss

    if dry_run:
        return (Shape(2, 64, 4, 4, head_dim=16, vocab=512, name="tiny (4, 4)"),
                Shape(2, 64, 4, 1, head_dim=16, vocab=512, name="tiny (4, 1)"))
    source = sources.figure2(resamples=0)
    law = source.fits[(8, 1)]
    ours = shapes_at_loss(law.predict, 2.615, 8, 1, head_dim=64, vocab=source.setting.vocab,
                          anchors=source.setting.anchors)
    baseline = Shape(36, 1536, 32, 8, head_dim=64, vocab=source.setting.vocab, name="paper (32, 8) 36x1536")
    search.check_target(source.fits, 2.615)
    return baseline, ours


def largest_batch(shape, context: int, memory: float, cap: int) -> int:
    """The most sequences whose bf16 caches fit beside the bf16 weights in 90% of `memory` bytes (at most cap)."""
    from gqa import architecture

    arch = architecture.Architecture.from_shape(shape)
    return max(1, min(cap, architecture.max_batch(arch, context, 0.9 * memory)))


def decode_rows(sizes: dict, dry_run: bool, log) -> dict:
    import torch

    from gqa import architecture
    from gqa.benchmarks import decode_throughput

    baseline, ours = table5_shapes(dry_run)
    context = sizes["context"]
    memory = (torch.cuda.get_device_properties(0).total_memory if sizes["device"] == "cuda" else 2e9)
    rows = {}
    for label, shape in (("baseline", baseline), ("ours", ours)):
        batches = sorted({1, largest_batch(shape, context, memory, sizes["max_batch"])})
        for batch in batches:
            r = decode_throughput(shape, context, steps=sizes["steps"], batch=batch, device=sizes["device"],
                                  dtype=sizes["dtype"])
            arch = architecture.Architecture.from_shape(shape)
            rows[f"{label} batch {batch}"] = {"shape": shape.describe(), "heads": list(shape.heads), "batch": batch,
                                              "tokens_per_s": r["tokens_per_s"],
                                              "memory_bytes": architecture.memory_bytes(arch, context, batch)}
            log(f"  {label:8} ({shape.n_heads}, {shape.n_kv_heads}) {shape.describe()}: batch {batch}, "
                f"{r['tokens_per_s']:,.1f} tokens/s")
    one = rows["ours batch 1"]["tokens_per_s"] / rows["baseline batch 1"]["tokens_per_s"]
    eq4 = rows["baseline batch 1"]["memory_bytes"] / rows["ours batch 1"]["memory_bytes"]
    return {"context": context, "rows": rows, "measured_ratio_batch_1": one, "eq4_memory_ratio": eq4,
            "paper_ratio": PAPER_RATIO, "heads": [list(ours.heads), list(baseline.heads)]}


def training_row(sizes: dict, log) -> list[dict]:
    from gqa.benchmarks import training_options
    from gqa.config import TrainConfig

    device = sizes["device"]
    cfg = TrainConfig(layers=2, d_model=128, n_heads=8, n_kv_heads=2, head_dim=16, vocab_size=512,
                      context=512 if device == "cuda" else 64, batch_size=16 if device == "cuda" else 2, device=device)
    rows = training_options(cfg, 512, steps=sizes["train_steps"], warmup=2,
                            options=("fp32, fused AdamW", "bf16 autocast"))
    for r in rows:
        log(f"  {r['option']:22}{r['tokens_per_s']:>12,.0f} tok/s {r['ratio']:.2f}x")
    return rows


def run(dry_run: bool, out_dir: Path, log=print) -> dict:
    import torch

    from gqa.machine import device_slug
    from gqa.paths import write_text_atomic

    sizes = _sizes(dry_run)
    if not dry_run and not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device (a CUDA build of PyTorch and a GPU are needed; "
                           "--dry-run runs the same code on the CPU at tiny sizes)")
    slug = device_slug(sizes["device"])
    started = time.perf_counter()
    log("1. attention sweep (bf16)")
    sweep = attention_sweep(sizes, out_dir / f"{slug}_gpu-check.csv", log)
    log("2. Table 5's inference row: decode tokens/s")
    decode = decode_rows(sizes, dry_run, log)
    log("3. training throughput")
    train = training_row(sizes, log)
    summary = {"device": slug, "dry_run": dry_run, "torch": torch.__version__, "sweep_rows": len(sweep),
               "decode": decode, "training": train, "seconds": time.perf_counter() - started}
    path = write_text_atomic(out_dir / f"gpu_check_{slug}.json", json.dumps(summary, indent=2))
    (ours, base) = (tuple(h) for h in decode["heads"])
    log(f"{ours} over {base} at batch 1: measured {decode['measured_ratio_batch_1']:.2f}x, Eq. 4's memory ratio "
        f"{decode['eq4_memory_ratio']:.2f}x, the paper's Table 5 {PAPER_RATIO:.2f}x; {summary['seconds']:.0f} s in all "
        f"-> {path}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gqa.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU at tiny sizes")
    parser.add_argument("--out", help="folder for the results (default data/profiles/; with --dry-run a "
                                      "temporary folder)")
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"gpu-check: missing Python packages: {', '.join(missing)} (this check installs nothing; use a "
              f"Python that has them: make gpu-check PYTHON=...)", file=sys.stderr)
        return 2
    from gqa.paths import PROFILES_DATA_DIR

    out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="gpu-check-")) if args.dry_run
                                           else PROFILES_DATA_DIR)
    out.mkdir(parents=True, exist_ok=True)
    try:
        run(args.dry_run, out)
    except (RuntimeError, ValueError) as e:
        print(f"gpu-check: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
