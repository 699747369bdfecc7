"""`gqa sweep`: train every (head configuration, size) of a profile that is not yet recorded.

A profile's `sweep` section:
  data:  corpus settings (corpus, vocab_size, val_percent, max_bytes)
  train: training settings shared by every run (context, batch_size, tokens_per_param, lr, ...)
  heads: list of [n_h, n_kv]
  sizes: list of [layers, d_model] (optionally a third element: a per-size learning rate)
Records go to data/runs/<profile>.jsonl; checkpoints to .cache/runs/<profile>/<run_id>/, so a killed
sweep resumes the run it was in and skips the ones already recorded. A run is identified by its settings
(`TrainConfig.run_id`), so a run recorded in any store under data/runs/ (by another profile with the same
settings, say) is done and is not trained again. A run is claimed before it trains (`runs.claim`), so two
sweeps at once share the work and never train one run twice.
"""

from __future__ import annotations


from gqa import runs
from gqa.paths import CACHE_DIR
from gqa.train import TrainConfig, train

RUN_CACHE = CACHE_DIR / "runs"


def sweep_configs(section: dict) -> list[TrainConfig]:
    """Every run of a sweep section, sizes outermost (small runs first), then head configurations."""
    for key in ("heads", "sizes"):
        if not section.get(key):
            raise ValueError(f"sweep section needs a non-empty {key!r} list")
    shared = {**(section.get("data") or {}), **(section.get("train") or {})}
    configs = []
    for size in section["sizes"]:
        layers, d_model, *lr = size
        for n_heads, n_kv_heads in section["heads"]:
            settings = {**shared, "layers": layers, "d_model": d_model, "n_heads": n_heads,
                        "n_kv_heads": n_kv_heads}
            if lr:
                settings["lr"] = lr[0]
            configs.append(TrainConfig.from_dict(settings))
    return configs


def run_sweep(profile: str, section: dict, *, limit: int | None = None, progress: bool = True,
              log=print) -> list[dict]:
    """Train what is missing; return the records written in this call."""
    store = runs.store_path(profile)
    configs = sweep_configs(section)
    done = runs.recorded_ids()  # a run recorded under any profile is done: records are found by run id
    todo = [c for c in configs if c.run_id() not in done]
    log(f"sweep {profile}: {len(configs)} runs, {len(configs) - len(todo)} recorded, {len(todo)} to train")
    written = []
    for i, cfg in enumerate(todo, 1):
        if limit and len(written) >= limit:
            break
        label = (f"[{i}/{len(todo)}] H=({cfg.n_heads},{cfg.n_kv_heads}) L={cfg.layers} d={cfg.d_model} "
                 f"d_h={cfg.head_dim} run {cfg.run_id()}")
        try:
            with runs.claim(cfg.run_id()):
                if cfg.run_id() in runs.recorded_ids():  # finished by another process meanwhile
                    log(f"{label}: recorded by another process")
                    continue
                log(label)
                result = train(cfg, RUN_CACHE / profile / cfg.run_id(), resume=True, record_to=store,
                               progress=progress, log=log)
        except runs.RunClaimed:
            log(f"{label}: being trained by another process, skipped")
            continue
        written.append(result.record)
    return written


def study_records(section: dict, profile: str = "this profile") -> tuple[list[dict], str]:
    """The records of every run a sweep section plans, found by settings in any store of data/runs/, and
    a label naming the stores they came from. An error names the command that trains what is missing."""
    configs = sweep_configs(section)
    by_id = runs.index()
    missing = [c for c in configs if c.run_id() not in by_id]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the {len(configs)} runs of {profile}'s sweep are not "
                                f"recorded in data/runs/: run `gqa sweep --profile {profile}`")
    found = [by_id[c.run_id()] for c in configs]
    stores = sorted({store for _, store in found})
    return [record for record, _ in found], ", ".join(f"data/runs/{name}.jsonl" for name in stores)
