"""Faults: damaged checkpoints are never resumed silently, one run gives one record, concurrent or killed
work neither duplicates nor corrupts anything."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from gqa import profiles, runs
from gqa.config import TrainConfig
from gqa.model import build_model
from gqa.paths import file_sha256
from gqa.shapes import Shape
from gqa.train import CheckpointError, load_checkpoint, make_optimizer, save_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
SHAPE = Shape(1, 32, 2, 1, head_dim=16, vocab=64)


def _model_and_optimizer(seed=0):
    model = build_model(SHAPE, seed=seed)
    cfg = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, head_dim=16, vocab_size=300)
    return model, make_optimizer(model, cfg)


def _step(model, optimizer):
    loss = model(torch.randint(0, 64, (2, 8))).logits.float().pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


@pytest.fixture
def two_checkpoints(tmp_path):
    """A checkpoint at step 2 (kept as .prev) and one at step 3 (the newest), of run 'r1'."""
    model, optimizer = _model_and_optimizer()
    folder = tmp_path / "checkpoint"
    for step in range(1, 4):
        _step(model, optimizer)
        if step >= 2:
            save_checkpoint(folder, model, optimizer, {"run_id": "r1", "step": step, "train_losses": []})
    return folder


def _flip(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_good_checkpoint_resumes_at_its_step(two_checkpoints):
    model, optimizer = _model_and_optimizer(seed=1)
    assert load_checkpoint(two_checkpoints, model, optimizer, "r1", log=lambda *a: None)["step"] == 3


@pytest.mark.parametrize("damage", ["flip model", "flip optimizer", "truncate model", "edit step", "delete model"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_good_one(two_checkpoints, damage):
    if damage == "flip model":
        _flip(two_checkpoints / "model.safetensors")
    elif damage == "flip optimizer":
        _flip(two_checkpoints / "optimizer.pt")
    elif damage == "truncate model":
        path = two_checkpoints / "model.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "edit step":
        state = json.loads((two_checkpoints / "state.json").read_text())
        (two_checkpoints / "state.json").write_text(json.dumps({**state, "step": 999}))
    else:
        (two_checkpoints / "model.safetensors").unlink()
    said = []
    model, optimizer = _model_and_optimizer(seed=1)
    state = load_checkpoint(two_checkpoints, model, optimizer, "r1", log=said.append)
    assert state["step"] == 2  # the previous good checkpoint, never the damaged one
    assert any("not resuming from" in s for s in said) and any("previous good checkpoint" in s for s in said)


def test_with_no_good_checkpoint_it_stops_naming_the_file(two_checkpoints):
    _flip(two_checkpoints / "model.safetensors")
    _flip(two_checkpoints.with_name("checkpoint.prev") / "optimizer.pt")
    model, optimizer = _model_and_optimizer(seed=1)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*SHA-256.*optimizer\.pt"):
        load_checkpoint(two_checkpoints, model, optimizer, "r1", log=lambda *a: None)


def test_another_runs_checkpoint_is_refused_in_one_sentence(two_checkpoints):
    model, optimizer = _model_and_optimizer(seed=1)
    with pytest.raises(ValueError, match="belongs to run r1, not r2"):
        load_checkpoint(two_checkpoints, model, optimizer, "r2", log=lambda *a: None)


# --- one run, one record --------------------------------------------------------------------------------


def test_append_never_records_a_run_twice(tmp_path):
    store = tmp_path / "s.jsonl"
    assert runs.append({"run_id": "a", "val_loss": 1.0}, store) is True
    assert runs.append({"run_id": "a", "val_loss": 2.0}, store) is False
    assert len(store.read_text().splitlines()) == 1


def test_readers_deduplicate_by_run_id(tmp_path):
    store = tmp_path / "s.jsonl"
    store.write_text("\n".join(json.dumps({"run_id": i, "v": n}) for n, i in enumerate("aab")) + "\n")
    assert [r["run_id"] for r in runs.read(store)] == ["a", "b"]


def test_a_live_claim_excludes_and_a_released_one_is_reclaimed(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "CLAIMS_DIR", tmp_path)
    script = ("import sys, time; sys.path.insert(0, sys.argv[1]); from gqa import runs; from pathlib import Path\n"
              "runs.CLAIMS_DIR = Path(sys.argv[2])\n"
              "with runs.claim('x'):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runs.RunClaimed):
            with runs.claim("x"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # a dead holder's claim is released by the OS
        holder.wait()
    with runs.claim("x"):
        pass


@pytest.mark.slow
def test_resume_of_a_finished_run_appends_no_second_record(tmp_path, small_corpus, data_cache):
    store = tmp_path / "runs.jsonl"
    cfg = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, head_dim=16, corpus=small_corpus,
                      vocab_size=300, val_percent=20.0, context=32, batch_size=4, tokens=4096, eval_tokens=512,
                      checkpoint_every=5)
    train(cfg, tmp_path / "run", record_to=store, progress=False, log=lambda *a: None)
    said = []
    train(cfg, tmp_path / "run", resume=True, record_to=store, progress=False, log=said.append)
    assert len(runs.read(store)) == len(store.read_text().splitlines()) == 1
    assert any("not recorded twice" in s for s in said)


# --- concurrency and kills: real processes --------------------------------------------------------------


def _env(tmp_path: Path) -> dict:
    return dict(os.environ, GQA_RUNS_DIR=str(tmp_path / "runs"), GQA_WORK_DIR=str(tmp_path / "work"),
                GQA_CACHE=str(tmp_path / "tokens"), PYTHONUNBUFFERED="1")


def _gqa(*argv) -> list[str]:
    return [sys.executable, "-m", "gqa.cli", *argv]


TINY_SWEEP = {"extends": "ci", "sweep": {
    "data": {"corpus": "python-stdlib", "vocab_size": 300, "val_percent": 2.0, "max_bytes": 2000000},
    "train": {"head_dim": 8, "context": 32, "batch_size": 4, "tokens_per_param": 2, "lr": 3.0e-3, "seed": 7,
              "eval_tokens": 1024, "checkpoint_every": 20},
    "heads": [[2, 2], [2, 1]], "sizes": [[1, 16], [1, 24]]}}


@pytest.mark.slow
@pytest.mark.parametrize("profile", [
    "tiny",  # the ci profile's sweep, made tiny: seconds
    pytest.param("ci", marks=pytest.mark.stress),  # `gqa sweep --profile ci` itself: minutes (pytest -m stress)
])
def test_two_concurrent_sweeps_train_every_run_once(tmp_path, profile):
    """Two sweeps at once into an empty run store share the runs: each is trained once, recorded once."""
    if profile == "tiny":
        (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
        profile = str(tmp_path / "tiny.yaml")
    env = _env(tmp_path) | {"OMP_NUM_THREADS": "1"}  # one core each
    procs = [subprocess.Popen(_gqa("sweep", "--profile", profile), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    from gqa.cli._common import profile_identity

    store = tmp_path / "runs" / f"{profile_identity(profile)}.jsonl"  # a profile file's store: <stem>-<digest>
    records = [json.loads(line) for line in store.read_text().splitlines()]
    ids = [r["run_id"] for r in records]
    planned = profiles.load(profile).section("sweep")
    assert len(ids) == len(set(ids)) == len(planned["heads"]) * len(planned["sizes"])  # every run recorded once
    trained = sum(o.count("val loss") for o in outputs)
    assert trained == len(ids), outputs  # and trained once: the other sweep skipped it
    assert all(o.count("val loss") for o in outputs), outputs  # both did some of the work
    assert not list((tmp_path / "tokens").glob("*.tmp*"))


def test_a_diverged_run_does_not_claim_a_checkpoint_it_never_wrote(tmp_path, small_corpus, data_cache, monkeypatch):
    import gqa.train as training

    monkeypatch.setattr(training, "next_token_loss", lambda *a: torch.tensor(float("nan"), requires_grad=True))
    cfg = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, head_dim=16, corpus=small_corpus,
                      vocab_size=300, val_percent=20.0, context=32, batch_size=4, tokens=4096, checkpoint_every=5)
    with pytest.raises(training.TrainingDiverged, match="no checkpoint was written before it"):
        train(cfg, tmp_path / "run", progress=False, log=lambda *a: None)


def test_a_token_cache_whose_meta_lacks_splits_is_rebuilt(tmp_path, small_corpus, data_cache):
    from gqa import data

    spec = data.DataSpec(small_corpus, 300, 10.0)
    first = data.prepare(spec, log=lambda *a: None)
    meta = json.loads((first.directory / "meta.json").read_text())
    (first.directory / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "splits"}))
    with pytest.raises(ValueError, match="meta.json: needs `splits`"):
        data.verify(first.directory)
    said = []
    again = data.prepare(spec, log=said.append)
    assert any("rebuilding" in s for s in said) and again.meta["splits"] == meta["splits"]


def test_token_counts_are_parsed_as_integers():
    from gqa.units import parse_tokens

    assert parse_tokens("99999999999999999999") == 99999999999999999999
    assert parse_tokens("1.5k") == 1536 and parse_tokens("128k") == 131072


@pytest.mark.slow
def test_four_concurrent_cold_prepares_build_one_cache(tmp_path):
    env = _env(tmp_path)
    argv = _gqa("data", "prepare", "--vocab-size", "300", "--max-bytes", "2000000")
    procs = [subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    entries = [p for p in (tmp_path / "tokens").iterdir() if p.is_dir()]
    assert len(entries) == 1 and not [p for p in entries if ".tmp" in p.name]
    assert sum("training a 300-token BPE tokenizer" in o for o in outputs) == 1  # built once


@pytest.mark.slow
def test_a_prepare_killed_midway_leaves_nothing_that_breaks_the_rerun(tmp_path):
    env = _env(tmp_path)
    argv = _gqa("data", "prepare", "--vocab-size", "300", "--max-bytes", "8000000")  # ~8 s to build here
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "tokens").glob("*.lock")):
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p for p in (tmp_path / "tokens").iterdir() if p.is_dir() and ".tmp" not in p.name]
    assert not finished, "the build finished before it could be killed"
    again = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    entries = [p for p in (tmp_path / "tokens").iterdir() if p.is_dir()]
    assert len(entries) == 1 and ".tmp" not in entries[0].name


def test_after_a_fallback_the_damaged_checkpoint_is_set_aside(two_checkpoints):
    _flip(two_checkpoints / "model.safetensors")
    model, optimizer = _model_and_optimizer(seed=1)
    assert load_checkpoint(two_checkpoints, model, optimizer, "r1", log=lambda *a: None)["step"] == 2
    assert two_checkpoints.with_name("checkpoint.damaged").exists()
    _step(model, optimizer)
    save_checkpoint(two_checkpoints, model, optimizer, {"run_id": "r1", "step": 3, "train_losses": []})
    # the newest is good again, and .prev is the good step 2, not the damaged copy
    assert load_checkpoint(two_checkpoints.with_name("checkpoint.prev"), model, optimizer, "r1",
                           log=lambda *a: None)["step"] == 2


def test_a_half_written_last_line_is_not_a_record_yet(tmp_path):
    store = tmp_path / "s.jsonl"
    store.write_text(json.dumps({"run_id": "a"}) + "\n" + '{"run_id": "b", "val_lo')
    assert [r["run_id"] for r in runs.read(store)] == ["a"]
    store.write_text(json.dumps({"run_id": "a"}) + "\n" + '{"run_id": "b", "val_lo\n')
    with pytest.raises(ValueError, match="s.jsonl:2"):
        runs.read(store)


def test_twenty_and_twenty_point_zero_tokens_per_param_are_one_run():
    a = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, tokens_per_param=20, lr=1)
    b = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, tokens_per_param=20.0, lr=1.0)
    assert a.run_id() == b.run_id()


def test_records_are_matched_by_their_settings_whatever_id_they_stored(tmp_path):
    cfg = TrainConfig(layers=1, d_model=32, n_heads=2, n_kv_heads=1, tokens_per_param=20)
    legacy = {"run_id": "0000legacy000000", "config": {**cfg.identity(), "tokens_per_param": 20}}
    (tmp_path / "old.jsonl").write_text(json.dumps(legacy) + "\n")
    found, missing = runs.records_for([cfg], tmp_path)
    assert [r["run_id"] for r in found] == ["0000legacy000000"] and missing == []


def test_an_append_after_a_cut_short_line_sets_the_fragment_aside(tmp_path):
    """What a crash or a full disk in the middle of an append leaves: a last line without its newline.
    The next append moves it to <store>.fragments (with a warning) instead of gluing a record onto it."""
    import json
    import warnings

    from gqa import runs

    store = tmp_path / "s.jsonl"
    store.write_text(json.dumps({"run_id": "a"}) + "\n" + '{"run_id": "b", "val_lo')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert runs.append({"run_id": "c", "val_loss": 3.0}, store)
    assert [r["run_id"] for r in runs.read(store)] == ["a", "c"]
    assert store.read_text().count("\n") == 2 and store.read_text().endswith("\n")
    assert (tmp_path / "s.jsonl.fragments").read_text() == '{"run_id": "b", "val_lo\n'
    assert len(caught) == 1 and "s.jsonl.fragments" in str(caught[0].message)
    # a whole store is left alone, and nothing more is set aside
    assert runs.append({"run_id": "d"}, store) and (tmp_path / "s.jsonl.fragments").read_text().count("\n") == 1


def test_an_append_that_fails_part_way_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    """A write that raises (a full disk) is truncated back: the store stays whole, the error surfaces."""
    import io
    import json

    from gqa import runs

    store = tmp_path / "s.jsonl"
    store.write_text(json.dumps({"run_id": "a"}) + "\n")
    before = store.read_bytes()
    real_open = type(store).open

    class HalfWriter(io.BufferedWriter):
        def write(self, data):  # writes half, then the disk is full
            super().write(data[: len(data) // 2])
            super().flush()
            raise OSError(28, "No space left on device")

    def opener(self, mode="r", *args, **kwargs):
        if self == store and mode == "ab":
            return HalfWriter(io.FileIO(str(self), "ab"))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(type(store), "open", opener)
    with pytest.raises(OSError, match="No space"):
        runs.append({"run_id": "b"}, store)
    assert store.read_bytes() == before


def _mount_tmpfs(folder: Path, options: str) -> None:
    """Mount a small tmpfs at `folder` (needs the right to mount, as root in a container has); skip the test
    with the reason where it is missing (what it tests is also tested without a mount)."""
    folder.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {proc.stderr.strip()[:120]}")


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB tmpfs."""
    mount = tmp_path / "small"
    _mount_tmpfs(mount, "size=64k")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_real_full_disk_leaves_the_store_whole_and_the_next_append_works(small_disk):
    import json

    store = small_disk / "s.jsonl"
    store.write_text(json.dumps({"run_id": "a"}) + "\n")
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as f:  # fill the disk to its last block
        try:
            while True:
                f.write(b"x" * 512)
        except OSError:
            pass
    before = store.read_bytes()
    code = ("import sys; from pathlib import Path; from gqa import runs; "
            "runs.append({'run_id': 'b', 'pad': 'y' * 20000}, Path(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True)
    assert proc.returncode != 0 and "No space left" in proc.stderr
    assert store.read_bytes() == before
    filler.unlink()
    proc = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from gqa import runs

    assert [r["run_id"] for r in runs.read(store)] == ["a", "b"]


class _Planted:
    def __reduce__(self):
        return (print, ("code from a checkpoint ran",))


def test_a_checkpoint_holding_code_is_refused_in_one_sentence(two_checkpoints):
    """An optimizer.pt that unpickles to something other than tensors (its digest rewritten to match, as
    someone planting it would) is refused without torch's advice to retry with weights_only=False."""
    import pickle


    for folder in (two_checkpoints, two_checkpoints.with_name("checkpoint.prev")):
        path = folder / "optimizer.pt"
        torch.save({"state": {}, "param_groups": [], "planted": _Planted()}, path, pickle_module=pickle)
        state = json.loads((folder / "state.json").read_text())
        state["digests"]["optimizer.pt"] = file_sha256(path)
        (folder / "state.json").write_text(json.dumps(state))
    model, optimizer = _model_and_optimizer(seed=1)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(two_checkpoints, model, optimizer, "r1", log=lambda *a: None)
    message = str(caught.value)
    assert "holds objects other than tensors" in message and "weights_only" not in message
    assert len(message.splitlines()) == 1


def test_a_token_cache_naming_a_file_outside_its_folder_is_refused(tmp_path, small_corpus, data_cache):
    from gqa import data

    prepared = data.prepare(data.DataSpec(small_corpus, 300, 10.0), log=lambda *a: None)
    meta = json.loads((prepared.directory / "meta.json").read_text())
    for name in ("../../outside.bin", "/etc/hostname", ".."):
        meta["splits"]["val"]["file"] = name
        (prepared.directory / "meta.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="a file in the dataset's own folder"):
            data.verify(prepared.directory)


def test_readings_still_print_when_the_cache_is_on_a_read_only_mount(tmp_path):
    """A real read-only file system under GQA_WORK_DIR (root ignores file modes, a read-only mount it
    cannot): `gqa readings` prints its report and one warning line, exit 0."""
    work = tmp_path / "work"
    _mount_tmpfs(work, "size=64k,ro")
    try:
        small = tmp_path / "small.yaml"
        raw = yaml.safe_load((ROOT / "data" / "paper" / "readings.yaml").read_text())
        for point in ("fit_objective", "size_to_shape", "baseline", "cost_accounting"):
            keep = raw["default"][point]
            raw["points"][point]["options"] = {keep: raw["points"][point]["options"][keep]}
        small.write_text(yaml.safe_dump(raw, allow_unicode=True))
        result = subprocess.run([sys.executable, "-m", "gqa.cli", "readings", "--grid", str(small), "--resamples", "4"],
                                capture_output=True, text=True, env={**os.environ, "GQA_WORK_DIR": str(work)},
                                timeout=300)
    finally:
        subprocess.run(["umount", str(work)], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert "3 readings of the paper" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cannot be written" in warnings[0] and "Traceback" not in result.stderr


APPENDER = """
import sys, json
from pathlib import Path
from gqa import runs
store = Path(sys.argv[1])
i = 0
while True:
    runs.append({"run_id": f"{sys.argv[2]}-{i}", "pad": "x" * 200000}, store)
    i += 1
"""


def test_appends_killed_at_random_moments_leave_a_store_every_reader_reads(tmp_path):
    """Two processes append 200 kB records and are SIGKILLed at random moments, again and again: the store
    stays readable, every record in it is whole, and the next append works."""
    import random

    from gqa import runs

    store = tmp_path / "s.jsonl"
    rng = random.Random(0)
    for round_ in range(6):
        procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(store), f"p{round_}{k}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in range(2)]
        time.sleep(0.8 + rng.random())
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        records = runs.read(store)
        assert all(len(r["pad"]) == 200000 for r in records)
    before = len(runs.read(store))
    assert before > 0 and runs.append({"run_id": "after"}, store)
    assert len(runs.read(store)) == before + 1
