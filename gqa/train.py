"""Training: the paper's recipe at any scale, resumable and recorded.

AdamW (β = 0.9, 0.95; weight decay 0.1 on linear weights only), WSD schedule (linear warm-up over the
first 10% of steps, stable, cosine decay over the last 20% to 10% of the maximum LR), gradient clipping
at 1.0, a token budget of 20 tokens per non-embedding parameter by default, bf16 autocast on CUDA and
fp32 on CPU. The data position is a sample count, and checkpoints hold weights (safetensors), optimizer
state and that position, so a killed run resumes exactly. Runs under `torchrun` use DDP (gloo on CPU,
NCCL on CUDA); the batch size is global.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gqa import data as datalib
from gqa import machine as machine_info
from gqa import runs
from gqa.config import TrainConfig
from gqa.paths import file_sha256
from gqa.shapes import Shape


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; the last good checkpoint is kept."""


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on nn.Linear weights only (not embeddings, norms; a tied output is the embedding)."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            linear = isinstance(module, torch.nn.Linear) and name == "weight"
            (decay if linear and id(p) not in embedding_ids else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --- Distributed ------------------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def _mean_across(value: float, dist_info: Dist) -> float:
    if dist_info.world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist_info.world


# --- Checkpoints ------------------------------------------------------------------------------------


CHECKPOINT_FILES = ("model.safetensors", "optimizer.pt")


class CheckpointError(ValueError):
    """A checkpoint that does not prove itself: a file missing, damaged, or disagreeing with the others."""


def save_checkpoint(directory: Path, model, optimizer, state: dict) -> None:
    """Write weights (safetensors, with the run id and step in its metadata), the optimizer state, and the
    run state with a SHA-256 of each file. The checkpoint it replaces is kept as `<directory>.prev`, the
    fallback when the newest one turns out damaged. Every step is a rename, so a kill leaves one good copy."""
    from safetensors.torch import save_model

    tmp = directory.with_name(f"{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"), metadata={"run_id": state["run_id"], "step": str(state["step"])})
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    state = {**state, "digests": {name: file_sha256(tmp / name) for name in CHECKPOINT_FILES}}
    (tmp / "state.json").write_text(json.dumps(state))
    prev = directory.with_name(directory.name + ".prev")
    if directory.exists():
        shutil.rmtree(prev, ignore_errors=True)
        directory.replace(prev)
    tmp.replace(directory)


def verify_checkpoint(directory: Path, run_id: str) -> dict:
    """The state of a checkpoint whose files prove themselves: each file's SHA-256 equals the one recorded,
    and the weights' metadata names the same run and step as state.json. CheckpointError (naming the file)
    when damaged; ValueError when it is another run's."""
    from safetensors import safe_open

    state_file = directory / "state.json"
    try:
        state = json.loads(state_file.read_text())
        digests, step = state["digests"], int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{state_file}: unreadable or incomplete ({type(e).__name__})") from None
    if state.get("run_id") != run_id:
        raise ValueError(f"the checkpoint in {directory} belongs to run {state.get('run_id')}, not {run_id}: "
                         "another run's folder (use another --out, or delete it)")
    for name in CHECKPOINT_FILES:
        path = directory / name
        if not path.exists():
            raise CheckpointError(f"{path}: missing")
        if file_sha256(path) != digests.get(name):
            raise CheckpointError(f"{path}: its SHA-256 differs from the one recorded when it was written (damaged)")
    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("run_id") != run_id or meta.get("step") != str(step):
        raise CheckpointError(f"{state_file}: says run {state.get('run_id')} step {step}, but the weights were "
                              f"saved at run {meta.get('run_id')} step {meta.get('step')}")
    return state


def load_checkpoint(directory: Path, model, optimizer, run_id: str, log=print) -> dict | None:
    """Restore the newest checkpoint that proves itself (then the previous one); None if there is none.
    A damaged checkpoint is never loaded: with no good one left, CheckpointError names what is wrong."""
    from safetensors.torch import load_model

    problems = []
    for candidate in (directory, directory.with_name(directory.name + ".prev")):
        if not (candidate / "state.json").exists() and not candidate.exists():
            continue
        try:
            state = verify_checkpoint(candidate, run_id)
        except CheckpointError as e:
            problems.append(str(e))
            log(f"not resuming from {candidate}: {e}")
            continue
        load_model(model, str(candidate / "model.safetensors"))
        try:
            optimizer_state = torch.load(candidate / "optimizer.pt", weights_only=True)
        except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never, for a file on disk
            raise CheckpointError(f"{candidate / 'optimizer.pt'}: holds objects other than tensors and plain "
                                  "values; refused (only weights and optimizer state are loaded)") from None
        optimizer.load_state_dict(optimizer_state)
        steps = {int(s["step"]) for s in optimizer.state_dict()["state"].values() if "step" in s}
        if steps and steps != {int(state["step"])}:
            raise CheckpointError(f"{candidate / 'optimizer.pt'}: at step {sorted(steps)}, state.json says "
                                  f"{state['step']}")
        if problems:
            log(f"resuming from the previous good checkpoint {candidate} (step {state['step']})")
            if candidate != directory:  # set the damaged one aside, so the next save cannot rotate it into .prev
                damaged = directory.with_name(directory.name + ".damaged")
                shutil.rmtree(damaged, ignore_errors=True)
                if directory.exists():
                    directory.replace(damaged)
                candidate.replace(directory)
        return state
    if problems:
        raise CheckpointError("no checkpoint to resume proves itself: " + "; ".join(problems))
    return None


# --- Training ---------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model, tokens: np.ndarray, context: int, max_tokens: int, batch_size: int,
             device: str) -> float:
    """Mean next-token cross-entropy (nats) over the first chunks of a token stream."""
    n = min(datalib.num_chunks(tokens, context), max(1, max_tokens // context))
    if n == 0:
        raise ValueError(f"validation split ({len(tokens)} tokens) is shorter than one chunk")
    model.eval()
    total, count = 0.0, 0
    for start in range(0, n, batch_size):
        rows = [np.asarray(tokens[i * context:i * context + context + 1], dtype=np.int64)
                for i in range(start, min(n, start + batch_size))]
        batch = torch.from_numpy(np.stack(rows)).to(device)
        logits = _forward(model, batch[:, :-1], device)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten(), reduction="sum")
        total += float(loss)
        count += batch[:, 1:].numel()
    model.train()
    return total / count


def _forward(model, inputs: torch.Tensor, device: str) -> torch.Tensor:
    if device.startswith("cuda"):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model(inputs).logits
    return model(inputs).logits


def next_token_loss(model, batch: torch.Tensor, device: str) -> torch.Tensor:
    """Mean cross-entropy of predicting batch[:, 1:] from batch[:, :-1]."""
    logits = _forward(model, batch[:, :-1], device)
    return F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())


def optimizer_step(model, optimizer, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward, clip the global gradient norm, step, clear the gradients."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                             eps=1e-8, fused=True)  # one kernel per step on CPU and CUDA


@dataclass
class TrainResult:
    record: dict
    checkpoint: Path


def _check_before_training(cfg: TrainConfig, train_tokens, val_tokens, record_to: Path | None) -> None:
    """What would otherwise fail only at the end of a run: a split too short for one chunk of the context,
    a run store that cannot be written. ValueError naming it, before any step is taken."""
    for name, tokens in (("training", train_tokens), ("validation", val_tokens)):
        if datalib.num_chunks(tokens, cfg.context) == 0:
            raise ValueError(f"the {name} split holds {len(tokens):,} tokens, fewer than one chunk of context "
                             f"{cfg.context} + 1: use a shorter --context, a larger --max-bytes or --val-percent")
    if record_to is not None:
        folder = Path(record_to).parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK) or (
                Path(record_to).exists() and not os.access(record_to, os.W_OK)):
            raise ValueError(f"the run store {record_to} cannot be written (its folder or the file is not "
                             "writable): the run's record would be lost")


@dataclass
class _Session:
    """What a training run holds between its stages: the processes, the data, the model and optimizer."""

    cfg: TrainConfig
    dist: Dist
    prepared: datalib.Prepared
    shape: Shape  # with the tokenizer's vocabulary
    steps: int
    local_batch: int  # sequences per process and step
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    forward_model: torch.nn.Module  # what the training forward calls: DDP-wrapped and/or compiled
    log: Callable[..., None]

    @property
    def quiet_log(self):
        """The log on the main process; nothing elsewhere."""
        return self.log if self.dist.main else (lambda *a: None)


def _setup(cfg: TrainConfig, log) -> _Session:
    """Join the process group, prepare the data (rank 0 first), build the model and its optimizer."""
    from gqa import attention
    from gqa.model import build_model

    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {cfg.device!r}: this torch ({torch.__version__}) sees no CUDA device")
    attention.check_backend(cfg.attention)
    dist_info = init_distributed(cfg.device)
    if dist_info.world > 1 and not dist_info.main:
        torch.distributed.barrier()  # rank 0 builds the token cache first; the others then reuse it
    prepared = datalib.prepare(cfg.data_spec(), log=log if dist_info.main else (lambda *a: None))
    if dist_info.world > 1 and dist_info.main:
        torch.distributed.barrier()
    if cfg.batch_size % dist_info.world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {dist_info.world} processes")
    shape = cfg.shape(prepared.vocab_size)
    torch.manual_seed(cfg.seed)
    model = build_model(shape, attention_backend=cfg.attention, seed=cfg.seed, device=cfg.device,
                        max_context=cfg.context)
    model.train()
    optimizer = make_optimizer(model, cfg)
    forward_model = torch.nn.parallel.DistributedDataParallel(model) if dist_info.world > 1 else model
    if cfg.compile:  # the training forward only; evaluation and checkpoints use the model itself
        forward_model = torch.compile(forward_model)
    return _Session(cfg, dist_info, prepared, shape, cfg.steps(prepared.vocab_size), cfg.batch_size // dist_info.world,
                    model, optimizer, forward_model, log)


def _resume(session: _Session, out_dir: Path, resume: bool) -> dict:
    """The run's state: from its checkpoint when resuming (and one exists), else a fresh one. Starting over
    another run's checkpoint without `resume` is an error; saves cut short by a kill are removed."""
    cfg, ckpt_dir = session.cfg, out_dir / "checkpoint"
    state = {"run_id": cfg.run_id(), "step": 0, "train_losses": [], "val_losses": [], "elapsed": 0.0}
    for leftover in ckpt_dir.parent.glob(ckpt_dir.name + ".tmp*") if session.dist.main else ():
        shutil.rmtree(leftover, ignore_errors=True)  # saves cut short by a kill (the run is claimed: ours)
    if resume:
        restored = load_checkpoint(ckpt_dir, session.model, session.optimizer, state["run_id"], log=session.quiet_log)
        if restored is not None:
            state = {k: v for k, v in restored.items() if k != "digests"}
            session.quiet_log(f"resuming run {state['run_id']} at step {state['step']} of {session.steps}")
    elif ckpt_dir.exists():
        raise ValueError(f"{ckpt_dir} already holds a checkpoint: pass --resume or use another --out")
    if session.dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return state


def _loop(session: _Session, state: dict, ckpt_dir: Path, train_tokens, val_tokens, *, resumed: bool,
          progress: bool) -> tuple[float, float]:
    """Train from `state["step"]` to the last step, recording losses in `state` and checkpointing; the last
    training loss and this session's wall time (s). TrainingDiverged when the loss stops being finite."""
    from tqdm import tqdm

    cfg, dist_info, steps = session.cfg, session.dist, session.steps
    bar = tqdm(total=steps, initial=state["step"], disable=not (progress and dist_info.main),
               unit="step", dynamic_ncols=True, mininterval=2.0)
    started, tokens_this_session = time.perf_counter(), 0
    last_loss = state["train_losses"][-1][1] if state["train_losses"] else float("nan")
    step = state["step"]
    saved_step = step if resumed and step > 0 else None
    while step < steps:
        lr = cfg.learning_rate(step, steps)
        for group in session.optimizer.param_groups:
            group["lr"] = lr
        batch = datalib.batch_at(train_tokens, cfg.context, cfg.batch_size, step * cfg.batch_size, cfg.seed)
        rows = slice(dist_info.rank * session.local_batch, (dist_info.rank + 1) * session.local_batch)
        loss = next_token_loss(session.forward_model, torch.from_numpy(batch[rows]).to(cfg.device), cfg.device)
        loss_value = _mean_across(float(loss.detach()), dist_info)
        if not math.isfinite(loss_value):
            bar.close()
            kept = (f"the last good checkpoint (step {saved_step}) is kept in {ckpt_dir}" if saved_step is not None
                    else "no checkpoint was written before it")
            raise TrainingDiverged(f"loss became {loss_value} at step {step} (lr {lr:.3g}); {kept}")
        optimizer_step(session.model, session.optimizer, loss, cfg.grad_clip)
        step += 1
        last_loss = loss_value
        tokens_this_session += cfg.batch_size * cfg.context
        if step % cfg.log_every == 0 or step == steps:
            state["train_losses"].append([step, loss_value])
        if cfg.eval_interval and step % cfg.eval_interval == 0 and step < steps:
            state["val_losses"].append([step, _validation_loss(session, val_tokens)])
        elapsed = time.perf_counter() - started
        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}",
                        tok_s=f"{tokens_this_session / max(elapsed, 1e-9):,.0f}", refresh=False)
        bar.update()
        state["step"] = step
        if (step % cfg.checkpoint_every == 0 or step == steps) and dist_info.main:
            save_checkpoint(ckpt_dir, session.model, session.optimizer,
                            {**state, "elapsed": state["elapsed"] + elapsed})
            saved_step = step
    bar.close()
    return last_loss, time.perf_counter() - started


def _validation_loss(session: _Session, val_tokens) -> float:
    """The validation loss, averaged across processes."""
    cfg = session.cfg
    return _mean_across(evaluate(session.model, val_tokens, cfg.context, cfg.eval_tokens, session.local_batch,
                                 cfg.device), session.dist)


def build_record(session: _Session, state: dict, *, final_train_loss: float, val_loss: float, wall: float,
                 commit: str | None, machine: dict) -> dict:
    """The run's record: exactly the fields of `runs.RECORD_SCHEMA`, checked against it."""
    cfg, shape, steps = session.cfg, session.shape, session.steps
    params = shape.params()
    tokens = steps * cfg.batch_size * cfg.context
    values = {
        "run_id": state["run_id"], "config": cfg.identity(),
        "execution": {"attention": cfg.attention, "device": cfg.device, "processes": session.dist.world,
                      "dtype": "bf16-autocast" if cfg.device.startswith("cuda") else "fp32", "compiled": cfg.compile},
        "labels": cfg.extra,
        "n_heads": shape.n_heads, "n_kv_heads": shape.n_kv_heads, "head_dim": shape.head_dim,
        "layers": shape.layers, "d_model": shape.d_model, "d_ff": shape.d_ff, "vocab": session.prepared.vocab_size,
        "n_non_embedding": params.non_embedding, "n_total": params.total, "n_numel": params.numel,
        "tokens": tokens, "steps": steps, "seed": cfg.seed,
        "final_train_loss": final_train_loss, "val_loss": val_loss,
        "train_losses": state["train_losses"], "val_losses": state["val_losses"],
        "wall_time_s": wall, "tokens_per_s": tokens / wall,
        "corpus_fingerprint": session.prepared.meta["corpus_fingerprint"],
        "git_commit": commit, "machine": machine,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if set(values) != set(runs.RECORD_SCHEMA):
        differ = sorted(set(values) ^ set(runs.RECORD_SCHEMA))
        raise AssertionError(f"a record's fields differ from runs.RECORD_SCHEMA: {differ}")
    record = {key: values[key] for key in runs.RECORD_SCHEMA}
    runs.check_record(record, f"the record of run {record['run_id']}", fields=runs.RECORD_SCHEMA)
    return record


def train(cfg: TrainConfig, out_dir: Path, *, resume: bool = False, record_to: Path | None = None,
          progress: bool = True, log=print) -> TrainResult:
    """Train one model; write checkpoints under out_dir; append a record when the run finishes.

    `resume` continues from out_dir's checkpoint (it is an error to start over a different run's). The
    stages: set up (processes, data, model), resume, check what would fail only at the end, the loop, the
    final evaluation, and the record.
    """
    commit, machine = runs.git_commit(), machine_info.describe()  # the code and machine this process runs
    session = _setup(cfg, log)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoint"
    state = _resume(session, out_dir, resume)
    train_tokens, val_tokens = session.prepared.tokens("train"), session.prepared.tokens("val")
    _check_before_training(cfg, train_tokens, val_tokens, record_to)
    last_loss, this_session = _loop(session, state, ckpt_dir, train_tokens, val_tokens, resumed=resume,
                                    progress=progress)
    wall = state["elapsed"] + this_session
    val_loss = _validation_loss(session, val_tokens)
    state["val_losses"].append([session.steps, val_loss])
    record = build_record(session, state, final_train_loss=last_loss, val_loss=val_loss, wall=wall, commit=commit,
                          machine=machine)
    if session.dist.main:
        (out_dir / "record.json").write_text(json.dumps(record, indent=2))
        if record_to is not None and not runs.append(record, record_to):
            log(f"run {record['run_id']} is already recorded in {record_to}: not recorded twice")
        log(f"run {record['run_id']}: val loss {val_loss:.4f} after {record['tokens']:,} tokens "
            f"in {wall:.1f}s ({record['tokens_per_s']:,.0f} tok/s)")
    return TrainResult(record, ckpt_dir)
