"""Training: schedule, optimiser groups, a falling loss, exact resume after SIGKILL, records, DDP."""

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gqa import runs
from gqa.config import TrainConfig, sweep_configs, wsd_lr
from gqa.train import TrainingDiverged, param_groups, train


def flat(curve):
    """[[step, loss], ...] -> [step, loss, step, loss, ...]"""
    return [x for point in curve for x in point]


def tiny(corpus, **overrides):
    settings = dict(layers=2, d_model=32, n_heads=4, n_kv_heads=2, head_dim=8, corpus=corpus,
                    vocab_size=300, val_percent=10, context=32, batch_size=8, tokens=8 * 32 * 40,
                    lr=3e-3, eval_tokens=2048, checkpoint_every=5, log_every=1)
    return TrainConfig(**(settings | overrides))


def test_wsd_schedule_shape():
    lrs = [wsd_lr(s, 100, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0  # linear warm-up over 10 steps
    assert all(b > a for a, b in zip(lrs[:10], lrs[1:10]))
    assert set(lrs[10:80]) == {1.0}  # stable
    assert all(b < a for a, b in zip(lrs[80:], lrs[81:]))  # cosine decay over the last 20%
    assert lrs[-1] == pytest.approx(0.1)  # to 10% of the maximum
    assert wsd_lr(90, 100, 1.0) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 11 / 20)))


def test_weight_decay_only_on_linear_weights():
    from gqa.model import build_model
    from gqa.shapes import Shape

    for tied in (True, False):
        model = build_model(Shape(2, 32, 4, 2, head_dim=8, vocab=50, tied=tied))
        decay, no_decay = param_groups(model, 0.1)
        decayed = {id(p) for p in decay["params"]}
        names = {n for n, p in model.named_parameters() if id(p) in decayed}
        assert all(n.endswith("proj.weight") or n == "lm_head.weight" for n in names)
        assert "model.embed_tokens.weight" not in names
        assert ("lm_head.weight" in names) == (not tied)
        assert len(decayed) + len(no_decay["params"]) == len(list(model.parameters()))


def test_a_training_run_lowers_the_loss_and_is_recorded(data_cache, small_corpus, tmp_path):
    store = tmp_path / "runs.jsonl"
    result = train(tiny(small_corpus), tmp_path / "run", record_to=store, progress=False,
                   log=lambda *a: None)
    losses = [loss for _, loss in result.record["train_losses"]]
    assert losses[0] > math.log(300) - 0.5 and losses[-1] < losses[0] - 1.0
    assert result.record["val_loss"] < losses[0]
    (record,) = runs.read(store)
    for key in ("run_id", "config", "seed", "tokens", "steps", "train_losses", "val_loss", "wall_time_s",
                "tokens_per_s", "git_commit", "machine", "n_non_embedding", "n_total"):
        assert key in record
    assert record["n_non_embedding"] == 2 * (2 * 32 * 8 * 6 + 3 * 32 * 96)
    assert record["tokens"] == 8 * 32 * 40 and record["steps"] == 40
    assert record["machine"]["torch"] == torch.__version__
    assert set(record) == set(runs.RECORD_SCHEMA)  # the schema in gqa/runs.py names every field written
    broken = {**record, "steps": 40.5}
    with pytest.raises(ValueError, match="steps must be an integer"):
        runs.check_record(broken, "a record", fields=runs.RECORD_SCHEMA)
    with pytest.raises(ValueError, match="corpus_fingerprint must be a str"):
        runs.check_record({**record, "corpus_fingerprint": None}, "a record", fields=runs.RECORD_SCHEMA)
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        train(tiny(small_corpus), tmp_path / "run", progress=False, log=lambda *a: None)
    again = train(tiny(small_corpus), tmp_path / "run", resume=True, progress=False, log=lambda *a: None)
    assert again.record["final_train_loss"] == result.record["final_train_loss"]  # a finished run resumes
    assert again.record["val_loss"] == result.record["val_loss"]


def _train_cli(corpus, out, record, *extra):
    return [sys.executable, "-m", "gqa.cli", "train", "--layers", "2", "--d-model", "32", "--heads", "4",
            "--kv-heads", "2", "--head-dim", "8", "--corpus", corpus, "--vocab-size", "300",
            "--val-percent", "10", "--context", "32", "--batch-size", "8", "--tokens", str(8 * 32 * 150),
            "--lr", "3e-3", "--eval-tokens", "2048", "--checkpoint-every", "5", "--out", str(out),
            "--record", str(record), *extra]


@pytest.mark.slow  # two training processes, one killed: about 30 s
def test_sigkill_then_resume_matches_an_uninterrupted_run(data_cache, small_corpus, tmp_path):
    from gqa import data

    data.prepare(tiny(small_corpus).data_spec(), log=lambda *a: None)  # tokenize once, up front
    store = tmp_path / "runs.jsonl"
    proc = subprocess.Popen(_train_cli(small_corpus, tmp_path / "killed", store),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["step"] >= 20:
            break
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 20 <= killed_at < 150 and not store.exists()
    done = subprocess.run(_train_cli(small_corpus, tmp_path / "killed", store, "--resume"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming run" in done.stdout + done.stderr
    reference = subprocess.run(_train_cli(small_corpus, tmp_path / "straight", tmp_path / "ref.jsonl"),
                               capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr[-2000:]
    (resumed,) = runs.read(store)  # exactly one record for the killed-and-resumed run
    (straight,) = runs.read(tmp_path / "ref.jsonl")
    assert resumed["run_id"] == straight["run_id"]
    assert abs(resumed["val_loss"] - straight["val_loss"]) < 1e-4
    assert flat(resumed["train_losses"]) == pytest.approx(flat(straight["train_losses"]), abs=1e-4)


def _append_many(args):
    path, writer = args
    for i in range(50):
        runs.append({"run_id": f"{writer}-{i}", "payload": "x" * 2000}, path)


def test_concurrent_writers_lose_no_record(tmp_path):
    path = tmp_path / "store.jsonl"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_append_many, [(path, w) for w in range(4)])
    ids = [r["run_id"] for r in runs.read(path)]
    assert len(ids) == 200 and len(set(ids)) == 200


def test_corrupt_store_line_is_named(tmp_path):
    path = tmp_path / "store.jsonl"
    path.write_text('{"run_id": "a"}\n{broken\n')
    with pytest.raises(ValueError, match=":2: not a JSON record"):
        runs.read(path)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(data_cache, small_corpus,
                                                                           tmp_path):
    cfg = tiny(small_corpus, lr=1e30, warmup_frac=0.0, checkpoint_every=1)
    store = tmp_path / "runs.jsonl"
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at step \d+"):
        train(cfg, tmp_path / "run", record_to=store, progress=False, log=lambda *a: None)
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] >= 1 and all(math.isfinite(loss) for _, loss in state["train_losses"])
    assert not store.exists()


@pytest.mark.slow  # torchrun with two processes: about 20 s
def test_ddp_two_processes_match_one(data_cache, small_corpus, tmp_path):
    from gqa import data

    data.prepare(tiny(small_corpus).data_spec(), log=lambda *a: None)
    common = ["--tokens", str(8 * 32 * 12), "--no-record", "--log-every", "1"]
    single = subprocess.run(_train_cli(small_corpus, tmp_path / "one", tmp_path / "x.jsonl") + common,
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-2000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = _train_cli(small_corpus, tmp_path / "two", tmp_path / "x.jsonl") + common
    double = subprocess.run(launcher + cmd[1:], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "record.json").read_text())
    two = json.loads((tmp_path / "two" / "record.json").read_text())
    assert two["execution"]["processes"] == 2
    assert flat(two["train_losses"]) == pytest.approx(flat(one["train_losses"]), abs=1e-4)
    assert two["val_loss"] == pytest.approx(one["val_loss"], abs=1e-4)


def test_sweep_trains_what_is_missing_and_skips_what_is_recorded(data_cache, small_corpus, tmp_path,
                                                                 monkeypatch):
    from gqa import sweep

    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(sweep, "RUN_CACHE", tmp_path / "cache")
    section = {"data": {"corpus": small_corpus, "vocab_size": 300, "val_percent": 10},
               "train": {"context": 32, "batch_size": 8, "tokens": 8 * 32 * 6, "head_dim": 8,
                         "eval_tokens": 1024, "checkpoint_every": 3},
               "heads": [[4, 4], [4, 1]], "sizes": [[1, 32], [2, 32, 2e-3]]}
    configs = sweep_configs(section)
    assert [(c.layers, c.n_heads, c.n_kv_heads, c.lr) for c in configs] == [
        (1, 4, 4, 1e-3), (1, 4, 1, 1e-3), (2, 4, 4, 2e-3), (2, 4, 1, 2e-3)]
    first = sweep.run_sweep("t", section, limit=3, progress=False, log=lambda *a: None)
    assert len(first) == 3
    rest = sweep.run_sweep("t", section, progress=False, log=lambda *a: None)
    assert len(rest) == 1
    assert sweep.run_sweep("t", section, progress=False, log=lambda *a: None) == []
    assert len(runs.read(runs.store_path("t"))) == 4


def test_sweep_seeds_train_every_configuration_once_per_seed():

    section = {"train": {"context": 32, "head_dim": 8, "seed": 7}, "heads": [[4, 4], [4, 1]], "sizes": [[1, 32]]}
    assert [c.seed for c in sweep_configs(section)] == [7, 7]  # no list: train.seed
    configs = sweep_configs({**section, "seeds": [0, 3]})  # the list replaces train.seed
    assert [(c.seed, c.n_kv_heads) for c in configs] == [(0, 4), (0, 1), (3, 4), (3, 1)]
    assert len({c.run_id() for c in configs}) == 4  # the seed is part of a run's identity
    assert configs[2].label() == "H=(4,4) L=1 d=32 d_h=8 seed 3"
    for bad in ([], [0, 0], [-1], [1.5], "0"):
        with pytest.raises(ValueError, match="seeds"):
            sweep_configs({**section, "seeds": bad})


def test_training_options_benchmark_keeps_the_arithmetic():
    from gqa.benchmarks import training_options

    cfg = TrainConfig(layers=1, d_model=32, n_heads=4, n_kv_heads=2, head_dim=8, vocab_size=300, context=16,
                      batch_size=4)
    rows = training_options(cfg, 300, steps=2, warmup=1, options=("fp32, fused AdamW", "fp32, foreach AdamW",
                                                                   "bf16 autocast"))
    assert [r["option"] for r in rows] == ["fp32, fused AdamW", "fp32, foreach AdamW", "bf16 autocast"]
    assert rows[0]["ratio"] == 1 and all(r["tokens_per_s"] > 0 for r in rows)
    assert abs(rows[1]["loss_difference"]) < 1e-5  # the same arithmetic, another optimizer kernel
    assert abs(rows[2]["loss_difference"]) < 0.05  # bf16 rounds, a little
    with pytest.raises(ValueError, match="unknown option"):
        training_options(cfg, 300, options=("fp16",))
    from dataclasses import replace

    assert replace(cfg, compile=True).run_id() == cfg.run_id()  # compiling is how a run trains, not what


def test_throughput_benchmark_times_both_loops():
    from gqa.benchmarks import training_throughput

    cfg = TrainConfig(layers=1, d_model=32, n_heads=4, n_kv_heads=2, head_dim=8, vocab_size=300,
                      context=16, batch_size=4)
    r = training_throughput(cfg, vocab=300, steps=2, warmup=1)
    assert r["tokens"] == 2 * 4 * 16
    assert r["gqa_tokens_per_s"] > 0 and r["plain_eager_tokens_per_s"] > 0
    assert r["shape"] == cfg.shape(300).describe() and r["batch"] == 4 and r["context"] == 16  # one model, both loops


def test_what_would_fail_at_the_end_is_refused_before_the_first_step(data_cache, small_corpus, tmp_path):
    """A context longer than the validation split, or a run store that cannot be written, is named before
    any training (no checkpoint, no record), not after the last step."""
    with pytest.raises(ValueError, match="validation split holds .* fewer than one chunk of context 2000"):
        train(tiny(small_corpus, context=2000, tokens=8 * 2000), tmp_path / "long", progress=False,
              log=lambda *a: None)
    with pytest.raises(ValueError, match="training split holds"):
        train(tiny(small_corpus, context=100_000, tokens=8 * 100_000), tmp_path / "long", progress=False,
              log=lambda *a: None)
    assert not (tmp_path / "long" / "checkpoint").exists()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    with pytest.raises(ValueError, match="cannot be written"):
        train(tiny(small_corpus), tmp_path / "run", record_to=blocked / "runs.jsonl", progress=False,
              log=lambda *a: None)
    assert not (tmp_path / "run" / "checkpoint").exists()
