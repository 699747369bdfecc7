"""What chapter 3 says about a recorded study: where its runs were made, the pattern of their losses, its
design, and the live demonstration run, each as the sentences (and one table) the book shows.

Records are run records as `gqa.runs` stores them (one dict per run); sizes N are non-embedding parameters;
losses are validation losses in nats per token; wall times in seconds. Every sentence is computed from the
records, so the prose follows whatever runs a profile has recorded, none included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gqa.config import TrainConfig
from gqa.runs import frame, provenance
from gqa.units import count_phrase, format_count, format_duration, format_number

NO_RUNS = "(no runs recorded yet)"
PROVENANCE_KEYS = ("sweep_hours", "sweep_machine", "sweep_commits", "sweep_range", "sweep_dirty", "sweep_confound")


def provenance_words(records: list[dict]) -> dict[str, str]:
    """The study's provenance as the book states it: total training time (`sweep_hours`), the machines
    (`sweep_machine`), the commits (`sweep_commits`), the size range (`sweep_range`), whether any record was
    trained from uncommitted changes (`sweep_dirty`), and whether the runs on other machines are exactly the
    smallest size of every configuration, so machine and size are confounded (`sweep_confound`)."""
    if not records:
        return dict.fromkeys(PROVENANCE_KEYS, NO_RUNS)
    table = frame(records)
    made = provenance(records)
    smallest = set(table.sort_values("n_non_embedding").groupby(["n_heads", "n_kv_heads"])["run_id"].first())
    minority = [(cpu, set(table[table["machine.cpu"] == cpu]["run_id"])) for cpu, *_ in made.machines[1:]]
    confound = " ".join(
        f"The {len(ids)} runs on {cpu} are "
        + ("the smallest size of every configuration, so machine and commit change with the smallest point of "
           "every fit." if ids == smallest else "a mix of sizes.") for cpu, ids in minority)
    dirty = (f"{made.dirty} of the {made.runs} records carry a +dirty commit: they were trained from a working tree "
             "with changes not yet committed, so the commit alone does not pin the code that made them."
             if made.dirty > 0 else "Every record names a clean commit.")
    return {
        "sweep_hours": format_duration(table["wall_time_s"].sum()),
        "sweep_machine": "; ".join(f"{n} runs ({format_duration(3600 * hours)}) on {cpu} ({cores} cores, torch {torch})"
                                   for cpu, cores, torch, n, hours in made.machines),
        "sweep_commits": ", ".join(made.commits),
        "sweep_range": " to ".join(format_count(n) for n in (table["n_non_embedding"].min(),
                                                               table["n_non_embedding"].max())),
        "sweep_dirty": dirty,
        "sweep_confound": confound,
    }


def loss_pattern(records: list[dict]) -> str:
    """How the losses fall: in how many configurations the loss falls strictly with size, and, with one KV
    head, at how many sizes more query heads sit at or below fewer."""
    if not records:
        return "No runs are recorded, so there is no pattern to report yet."
    table = frame(records)
    configs = [g for _, g in table.groupby(["n_heads", "n_kv_heads"])]
    falls = sum(bool(len(g) > 1 and np.all(np.diff(g.sort_values("n_non_embedding")["val_loss"].to_numpy()) < 0))
                for g in configs)
    configs_seen = len(configs)
    ordered_sizes, sizes_seen = 0, 0
    for _, group in table[table["n_kv_heads"] == 1].groupby(["layers", "d_model"]):
        if group["n_heads"].nunique() >= 2:
            sizes_seen += 1
            ordered_sizes += bool(np.all(np.diff(group.sort_values("n_heads")["val_loss"].to_numpy()) <= 0))
    return (f"Loss falls with size in {count_phrase(falls, configs_seen, 'configuration')}"
            + (f"; with one KV head, more query heads sit lower in {count_phrase(ordered_sizes, sizes_seen, 'size')}."
               if sizes_seen else "."))


def summary_table(records: list[dict]):
    """One row per head configuration (most query heads first): its runs, smallest and largest N, best
    validation loss, training minutes and the machines that made it."""
    table = frame(records)
    return (table.groupby(["n_heads", "n_kv_heads"])
            .agg(runs=("run_id", "count"), smallest_N=("n_non_embedding", "min"),
                 largest_N=("n_non_embedding", "max"), best_val_loss=("val_loss", "min"),
                 wall_minutes=("wall_time_s", lambda s: round(s.sum() / 60, 1)),
                 machines=("machine.cpu", lambda s: "; ".join(f"{n} on {cpu}" for cpu, n in s.value_counts().items())))
            .sort_index(ascending=False))


def design_words(configs: Sequence[TrainConfig]) -> str:
    """A sweep's design in one phrase: its sizes (from the smallest to the largest N), head configurations
    and runs."""
    sizes = sorted({c.shape(c.vocab_size).params().non_embedding for c in configs})
    return (f"{len({(c.layers, c.d_model) for c in configs})} sizes from {sizes[0]:,} to {sizes[-1]:,} non-embedding "
            f"parameters for {len({(c.n_heads, c.n_kv_heads) for c in configs})} head configurations, "
            f"{len(configs)} runs")


def pilot_design_words(configs: Sequence[TrainConfig]) -> str:
    """A pilot's design in one phrase: its head configurations (most heads first), its one size and seeds."""
    return (", ".join(sorted({f"({c.n_heads}, {c.n_kv_heads})" for c in configs}, reverse=True))
            + f" at L = {configs[0].layers}, d = {configs[0].d_model} with {len({c.seed for c in configs})} seeds each")


def corpus_words(splits: dict[str, dict], vocab_size: int) -> dict[str, str]:
    """A prepared corpus's size: documents of both splits (`n_docs`), training and validation tokens and the
    vocabulary, from `data.prepare(...).meta["splits"]`."""
    train, val = splits["train"], splits["val"]
    return {"n_docs": f"{train['documents'] + val['documents']:,}", "n_train_tokens": f"{train['tokens']:,}",
            "n_val_tokens": f"{val['tokens']:,}", "vocab": f"{vocab_size:,}"}


def live_run_words(record: dict, shape_text: str, non_embedding: int, steps: int, splits: dict[str, dict],
                   max_bytes: int | None) -> dict[str, str]:
    """The live demonstration run as the book describes it, with the caveat that it is no point of the study:
    it may read part of the corpus, repeat data (passes over the training split above 1), and its loss is
    measured on its own held-out split."""
    train, val = splits["train"], splits["val"]
    epochs = record["tokens"] / train["tokens"]
    files = f"{val['documents']:,} held-out file" + ("" if val["documents"] == 1 else "s")
    caveat = ("It is a demonstration, not a point of the study below: "
              + (f"it reads the first {max_bytes / 1e6:g} MB of the corpus with a tokenizer of its own, "
                 if max_bytes else "")
              + f"its {record['tokens']:,} training tokens are {format_number(epochs)} passes over a "
              f"{train['tokens']:,}-token training split"
              + (", so it sees data again (the paper never repeats data)" if epochs > 1 else "")
              + f", and it is validated on {files}; its loss is not comparable with "
              "the study's.")
    return {"live_shape": shape_text, "live_N": f"{non_embedding:,}", "live_tokens": f"{record['tokens']:,}",
            "live_steps": f"{steps:,}", "live_val": format_number(record["val_loss"]),
            "live_tok_s": f"{record['tokens_per_s']:,.0f}", "live_caveat": caveat}
