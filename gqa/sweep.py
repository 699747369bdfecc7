"""`gqa sweep`: train every (head configuration, size) of a profile that is not yet recorded.

A profile's `sweep` section:
  data:  corpus settings (corpus, vocab_size, val_percent, max_bytes)
  train: training settings shared by every run (context, batch_size, tokens_per_param, lr, ...)
  heads: list of [n_h, n_kv]
  sizes: list of [layers, d_model] (optionally a third element: a per-size learning rate)
  seeds: optional list of seeds; every (size, head configuration) is trained once per seed (it replaces
         `train.seed`; default: that one seed, 0 unless given)
Records go to data/runs/<profile>.jsonl; checkpoints to .cache/runs/<profile>/<run_id>/, so a killed
sweep resumes the run it was in and skips the ones already recorded. A run is identified by its settings
(`TrainConfig.run_id`), so a run recorded in any store under data/runs/ (by another profile with the same
settings, say) is done and is not trained again. A run is claimed before it trains (`runs.claim`), so two
sweeps at once share the work and never train one run twice. `submit_sweep` runs the same per-run body
(`train_claimed`) as one submitit job per run, on Slurm or as local subprocesses.
"""

from __future__ import annotations

from gqa import runs
from gqa.config import TrainConfig, sweep_configs
from gqa.paths import CACHE_DIR
from gqa.paths import RUN_CACHE_DIR as RUN_CACHE
from gqa.train import train


def train_claimed(profile: str, cfg: TrainConfig, label: str = "", *, progress: bool = True, log=print) -> dict | None:
    """Train one run of a profile's sweep unless it is recorded or another process holds it: claim it
    (`runs.claim`), look again, train (resuming its checkpoint), record. The record, or None when skipped.
    This is the body of every way a sweep runs: in this process, or as one cluster job per run."""
    label = label or f"{cfg.label()} run {cfg.run_id()}"
    try:
        with runs.claim(cfg.run_id()):
            if cfg.run_id() in runs.recorded_ids():  # finished by another process meanwhile
                log(f"{label}: recorded by another process")
                return None
            log(label)
            result = train(cfg, RUN_CACHE / profile / cfg.run_id(), resume=True, record_to=runs.store_path(profile),
                           progress=progress, log=log)
    except runs.RunClaimed:
        log(f"{label}: being trained by another process, skipped")
        return None
    return result.record


def _todo(profile: str, section: dict, log) -> list[TrainConfig]:
    configs = sweep_configs(section)
    done = runs.recorded_ids()  # a run recorded under any profile is done: records are found by run id
    todo = [c for c in configs if c.run_id() not in done]
    log(f"sweep {profile}: {len(configs)} runs, {len(configs) - len(todo)} recorded, {len(todo)} to train")
    return todo


def run_sweep(profile: str, section: dict, *, limit: int | None = None, progress: bool = True,
              log=print) -> list[dict]:
    """Train what is missing in this process; return the records written in this call."""
    todo = _todo(profile, section, log)
    written = []
    for i, cfg in enumerate(todo, 1):
        if limit and len(written) >= limit:
            break
        label = f"[{i}/{len(todo)}] {cfg.label()} run {cfg.run_id()}"
        record = train_claimed(profile, cfg, label, progress=progress, log=log)
        if record is not None:
            written.append(record)
    return written


EXECUTORS = ("inline", "local", "slurm")
JOBS_DIR = CACHE_DIR / "jobs"


def make_executor(kind: str, folder, *, timeout_min: int = 60, cpus_per_task: int | None = None,
                  gpus_per_node: int = 0, partition: str | None = None, account: str | None = None):
    """A submitit executor: "slurm" (one Slurm job per run) or "local" (one subprocess per run, the same
    code path, for trying a cluster setup on one machine)."""
    if kind not in ("local", "slurm"):
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    import shutil

    import submitit

    if kind == "slurm" and not shutil.which("sbatch"):
        raise ValueError("--executor slurm needs Slurm (no sbatch on PATH): run it on the cluster's login node, "
                         "or try the same jobs here with --executor local")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    params = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_node, "name": "gqa-sweep"}
    if cpus_per_task:
        params["cpus_per_task"] = cpus_per_task
    if kind == "slurm":
        params.update({k: v for k, v in (("slurm_partition", partition), ("slurm_account", account)) if v})
    executor.update_parameters(**params)
    return executor


def submit_sweep(profile: str, section: dict, executor, *, limit: int | None = None, wait: bool = True,
                 log=print) -> list:
    """One job per run not yet recorded, each running `train_claimed` (so a run claimed by another sweep or
    job is skipped, never trained twice). With `wait`, block until every job ends and return the records
    written; otherwise return the submitted jobs."""
    todo = _todo(profile, section, log)[:limit]  # limit None: all
    jobs = []
    with executor.batch():
        for cfg in todo:
            jobs.append((cfg, executor.submit(train_claimed, profile, cfg, progress=False)))
    for cfg, job in jobs:
        log(f"submitted job {job.job_id}: {cfg.label()} run {cfg.run_id()}")
    if not wait:
        return [job for _, job in jobs]
    written = []
    for cfg, job in jobs:
        record = job.result()  # raises with the job's error and the path of its log
        log(f"job {job.job_id}: run {cfg.run_id()} " + ("recorded" if record else "skipped (recorded or claimed)"))
        if record is not None:
            written.append(record)
    return written
