"""`gqa data`, `gqa train`, `gqa sweep`: corpora, one training run, and the study."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gqa.cli._common import (
    CliError,
    _finite_float,
    _int,
    _non_negative_int,
    _Parser,
    _positive_int,
    _profile_section,
    _tokens,
)
from gqa.paths import CACHE_DIR, RUN_CACHE_DIR, RUNS_DIR, display_path
from gqa.shapes import get_preset


def cmd_data(args: argparse.Namespace) -> int:
    from gqa import data

    spec = data.DataSpec(args.corpus, args.vocab_size, args.val_percent, args.max_bytes)
    prepared = data.prepare(spec, rebuild=args.rebuild)
    for split, info in prepared.meta["splits"].items():
        print(f"{split:5} {info['tokens']:>12,} tokens  {info['documents']:>6,} documents")
    print(f"vocabulary {prepared.vocab_size:,} (EOS id {prepared.eos_id}); cached in {prepared.directory}")
    return 0


def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare a corpus: tokenizer and cached token streams")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION", parser_class=_Parser)
    prep = dsub.add_parser(
        "prepare", help="train the BPE tokenizer and cache train/validation token streams",
        description="Tokenize a corpus once (byte-level BPE trained on it) and cache the token ids "
                    f"as fingerprinted memmaps under {display_path(CACHE_DIR / 'gqa-data')} (or $GQA_CACHE).")
    _add_data_args(prep)
    prep.add_argument("--rebuild", action="store_true", help="rebuild even if a valid cache exists")
    p.set_defaults(func=cmd_data)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--corpus", default="python-stdlib",
                   help="python-stdlib (default, offline), files:GLOB, or hf:NAME[:SPLIT] (needs datasets)")
    g.add_argument("--vocab-size", type=_positive_int, default=4096, help="BPE vocabulary size")
    g.add_argument("--val-percent", type=_finite_float, default=2.0, help="documents held out for validation")
    g.add_argument("--max-bytes", type=_positive_int, default=None, help="read at most this much text")


def cmd_train(args: argparse.Namespace) -> int:
    from gqa import runs
    from gqa.config import TrainConfig
    from gqa.paths import RUN_CACHE_DIR as RUN_CACHE
    from gqa.train import train

    if args.preset:
        base = get_preset(args.preset)
        shape = dict(layers=base.layers, d_model=base.d_model, n_heads=base.n_heads,
                     n_kv_heads=base.n_kv_heads, head_dim=base.head_dim)
    else:
        shape = {}
    for key, value in (("layers", args.layers), ("d_model", args.d_model), ("n_heads", args.heads),
                       ("n_kv_heads", args.kv_heads), ("head_dim", args.head_dim)):
        if value is not None:
            shape[key] = value
    if "n_heads" in shape and "n_kv_heads" not in shape:
        shape["n_kv_heads"] = shape["n_heads"]
    missing = [k for k in ("layers", "d_model", "n_heads") if k not in shape]
    if missing:
        raise CliError(f"give --preset NAME or an explicit shape; missing {', '.join(missing)}")
    cfg = TrainConfig(
        **shape, d_ff=args.ffn, corpus=args.corpus, vocab_size=args.vocab_size,
        val_percent=args.val_percent, max_bytes=args.max_bytes, context=args.context,
        batch_size=args.batch_size, tokens=args.tokens, tokens_per_param=args.tokens_per_param,
        lr=args.lr, seed=args.seed, attention=args.attention, device=args.device,
        eval_interval=args.eval_interval, eval_tokens=args.eval_tokens,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    out = Path(args.out) if args.out else RUN_CACHE / "train" / cfg.run_id()
    record_to = None if args.no_record else (Path(args.record) if args.record else runs.store_path("train"))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 holds the claim for all
        train(cfg, out, resume=args.resume, record_to=record_to)
        return 0
    with runs.claim(cfg.run_id()):
        train(cfg, out, resume=args.resume, record_to=record_to)
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one model (the paper's recipe), resumable, recorded",
        description="Train one Llama-style GQA model: AdamW (0.9, 0.95, wd 0.1 on linear weights), "
                    "WSD schedule, clip 1.0, 20 tokens per non-embedding parameter by default. "
                    "Checkpoints every K steps; --resume continues a killed run exactly. Under "
                    "torchrun it trains with DDP. The finished run is appended to the run store.",
        epilog="example: gqa train --layers 2 --d-model 64 --heads 8 --kv-heads 2 --head-dim 16 "
               "--context 128 --batch-size 16 --max-bytes 2000000 --vocab-size 1024",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--preset", metavar="NAME", help="start from a preset shape")
    g.add_argument("--layers", type=_int)
    g.add_argument("--d-model", type=_int)
    g.add_argument("--heads", type=_int, help="query heads n_h")
    g.add_argument("--kv-heads", type=_int, help="KV heads n_kv (default n_h)")
    g.add_argument("--head-dim", type=_int, help="head dim d_h (default 64)")
    g.add_argument("--ffn", type=_int, default=None, help="SwiGLU width (default: the paper's rule)")
    _add_data_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--context", type=_tokens, default=256, help="training context in tokens")
    t.add_argument("--batch-size", type=_positive_int, default=16, help="sequences per step (global)")
    t.add_argument("--tokens", type=_tokens, default=None, help="token budget (default: see next)")
    t.add_argument("--tokens-per-param", type=_finite_float, default=20.0,
                   help="budget as tokens per non-embedding parameter (default 20)")
    t.add_argument("--lr", type=_finite_float, default=1e-3, help="maximum learning rate")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--attention", default="sdpa", help="eager, sdpa, repeat or flash")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--eval-interval", type=int, default=0, help="steps between validation losses")
    t.add_argument("--eval-tokens", type=_positive_int, default=65_536)
    t.add_argument("--checkpoint-every", type=_positive_int, default=50, help="steps between checkpoints")
    t.add_argument("--log-every", type=_positive_int, default=10)
    o = p.add_argument_group("output")
    o.add_argument("--out", help=f"run folder (default {display_path(RUN_CACHE_DIR / 'train')}/<run id>)")
    o.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    o.add_argument("--record", metavar="JSONL", help=f"run store (default {display_path(RUNS_DIR / 'train.jsonl')})")
    o.add_argument("--no-record", action="store_true", help="do not append a record")
    p.set_defaults(func=cmd_train)


def cmd_sweep(args: argparse.Namespace) -> int:
    from gqa.config import sweep_configs
    from gqa.sweep import run_sweep

    section = _profile_section(args.profile, "sweep")
    if args.dry_run:
        from gqa import runs

        done = runs.recorded_ids()
        configs = sweep_configs(section)
        for cfg in configs:
            mark = "done" if cfg.run_id() in done else "todo"
            print(f"{mark}  {cfg.run_id()}  {cfg.label()}")
        todo = sum(cfg.run_id() not in done for cfg in configs)
        print(f"{len(configs)} runs: {len(configs) - todo} recorded in {display_path(RUNS_DIR)}/, {todo} to train")
        return 0
    from gqa import runs
    from gqa.cli._common import check_output, profile_identity

    profile = profile_identity(args.profile)  # the store is named after the profile (a file's: stem-digest)
    store = runs.store_path(profile)
    store.parent.mkdir(parents=True, exist_ok=True)
    check_output(store, "the run store")
    if args.executor == "inline":
        run_sweep(profile, section, limit=args.limit)
        return 0
    from gqa.sweep import JOBS_DIR, make_executor, submit_sweep

    executor = make_executor(args.executor, Path(args.jobs_dir) if args.jobs_dir else JOBS_DIR / profile,
                             timeout_min=args.timeout_min, cpus_per_task=args.cpus_per_task,
                             gpus_per_node=args.gpus_per_node, partition=args.partition, account=args.account)
    submit_sweep(profile, section, executor, limit=args.limit, wait=not args.detach)
    return 0


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train every (head configuration, size) of a profile not yet recorded",
        description="Train the profile's sweep: every head configuration at every size. A run recorded "
                    f"in any store under {display_path(RUNS_DIR)}/ (found by its settings) is skipped, a run another "
                    "process is training is left to it, and an interrupted run resumes from its last "
                    "good checkpoint, so sweeps can be stopped, restarted and run side by side. New "
                    f"records go to {display_path(RUNS_DIR)}/<profile>.jsonl (a profile given as a file: "
                    "<its stem>-<digest of its path and content>.jsonl, never a built-in profile's store).")
    p.add_argument("--profile", default="cpu", help="a profile's name in notebooks/params/ or a YAML path")
    p.add_argument("--limit", type=_positive_int, help="train at most this many runs now")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    p.add_argument("--executor", choices=("inline", "local", "slurm"), default="inline",
                   help="inline: train here, one run after another (default); slurm: one Slurm job per run "
                        "through submitit (pip install 'gqa[cluster]'); local: the same jobs as subprocesses "
                        "here. A job claims its run before it trains, so sweeps and jobs never train one run "
                        f"twice (claims are file locks in {display_path(CACHE_DIR / 'claims')}: put it on a shared "
                        "file system with working locks)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--timeout-min", type=_positive_int, default=60, help="time limit per job (default 60)")
    p.add_argument("--cpus-per-task", type=_positive_int, help="CPUs per job")
    p.add_argument("--gpus-per-node", type=_non_negative_int, default=0, help="GPUs per job (default 0)")
    p.add_argument("--jobs-dir", help="where submitit keeps job logs (default .cache/jobs/<profile>)")
    p.add_argument("--detach", action="store_true", help="submit and exit, printing the job ids")
    p.set_defaults(func=cmd_sweep)
