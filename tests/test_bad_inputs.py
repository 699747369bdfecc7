"""Bad input to every command: exit status 2, one line on stderr naming the bad value, no traceback, and
the committed data (data/) byte-identical afterwards."""

import copy
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from gqa import paper
from gqa.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD_RECORD = {"run_id": "r", "n_heads": 4, "n_kv_heads": 1, "head_dim": 16, "vocab": 512, "layers": 1, "d_model": 32,
               "n_non_embedding": 1000, "val_loss": 3.0}


def _files(tmp: Path) -> None:
    """The bad files the table refers to as {tmp}/NAME."""
    (tmp / "folder").mkdir()
    (tmp / "text.png").write_text("not an image")
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()  # a real PNG of noise (which compresses badly), cut in half
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(buffer, "PNG")
    (tmp / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (tmp / "corrupt.jsonl").write_text('{"run_id": "a"}\n{not json\n')
    (tmp / "empty.jsonl").write_text("")
    for key, value in (("val_loss", None), ("n_heads", "four"), ("n_non_embedding", -1), ("val_loss", float("nan")),
                       ("val_loss", -2.0), ("n_kv_heads", 3)):
        record = dict(GOOD_RECORD)
        if value is None:
            record.pop(key)
        else:
            record[key] = value
        (tmp / f"record_{key}_{value}.jsonl").write_text(json.dumps(record) + "\n")
    (tmp / "nofits.json").write_text(json.dumps({"fits": [{"n_heads": 8}]}))
    grid = yaml.safe_load((paper.DATA_DIR / "readings.yaml").read_text())
    for name, change in (
            ("grid_no_allows", lambda g: g["points"]["baseline"]["options"]["table9_32x8"].pop("allows")),
            ("grid_bad_rule", lambda g: g["points"]["size_to_shape"]["options"]["appendix_b1"].update(rule="cubic")),
            ("grid_bad_default", lambda g: g["default"].update(baseline="gpt2")),
            ("grid_bad_delta", lambda g: g["points"]["fit_objective"]["options"]["huber_log"].update(huber_delta=-1)),
            ("grid_extra_point", lambda g: g["points"].update(tokenizer={"options": {}}))):
        broken = copy.deepcopy(grid)
        change(broken)
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(broken, allow_unicode=True))
    (tmp / "notjson.json").write_text("{fits: ")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "negfit.json").write_text(json.dumps({"fits": [{"n_heads": 8, "n_kv_heads": 1, "a": -1, "b": 0.3, "e": 2}]}))
    law = {"n_heads": 8, "n_kv_heads": 1, "a": 1e8, "b": 0.3, "e": 2.0, "n_range": [1e6, 1e8]}
    for name, change in (("fit_fractional", {"n_heads": 8.5}), ("fit_negative_e", {"e": -0.5}),
                         ("fit_inverted", {"n_range": [1e8, 1e6]}), ("fit_exponent", {"b": 40.0}),
                         ("fit_kv_not_dividing", {"n_kv_heads": 3}), ("fit_bool_heads", {"n_heads": True}),
                         ("fit_nan_a", {"a": "nan"}), ("fit_range_shape", {"loss_range": [2.0]})):
        (tmp / f"{name}.json").write_text(json.dumps({"fits": [{**law, **change}]}))
    (tmp / "fit_duplicate.json").write_text(json.dumps({"fits": [law, {**law, "a": 2e8}]}))
    (tmp / "fit_head_dim.json").write_text(json.dumps({"fits": [law], "head_dim": 0}))
    (tmp / "fit_setting.json").write_text(json.dumps({"fits": [law], "cost_setting": {"params": "some"}}))
    (tmp / "fit_anchors.json").write_text(json.dumps({"fits": [law], "anchors": [[1e6, -2]]}))
    (tmp / "fit_empty.json").write_text(json.dumps({"fits": []}))
    llama = {"model_type": "llama", "hidden_size": 512, "intermediate_size": 1376, "num_attention_heads": 8,
             "num_hidden_layers": 4, "num_key_value_heads": 2, "vocab_size": 1000, "tie_word_embeddings": True}
    for name, change in (("head_dim_0", {"head_dim": 0}), ("head_dim_str", {"head_dim": "64"}),
                         ("kv_5", {"num_key_value_heads": 5}), ("layers_neg", {"num_hidden_layers": -4}),
                         ("vocab_float", {"vocab_size": 1000.5})):
        (tmp / f"config_{name}").mkdir()
        (tmp / f"config_{name}" / "config.json").write_text(json.dumps({**llama, **change}))
    profiles = {
        "typo_nb": {"extends": "ci", "notebooks": {"06_paper_chek": {}}},
        "typo_param": {"extends": "ci", "notebooks": {"01_cost_model": {"bar_contxt": 1}}},
        "bad_type": {"extends": "ci", "notebooks": {"06_paper_check": {"context": "128k"}}},
        "bad_section": {"extends": "ci", "sweeps": {}},
        "bad_attention": {"extends": "ci", "attention_profile": {"n_head": 8}},
        "bad_train": {"extends": "ci", "sweep": {"train": {"tokens_per_param": -5}}},
        "bad_lr": {"extends": "ci", "sweep": {"train": {"lr": "fast"}}},
        "bad_heads": {"extends": "ci", "sweep": {"heads": [[4, 3]]}},
        "loop": {"extends": "loop"},
        "missing_parent": {"extends": "gpu-big"},
        "headline": {"extends": "ci", "notebooks": {"02_attention": {"headline_context": 999}}},
        "betas": {"extends": "ci", "sweep": {"train": {"betas": [0.9, 1.5]}}},
        "device_typo": {"extends": "ci", "sweep": {"train": {"device": "cpux"}}},
        "attention_typo": {"extends": "ci", "sweep": {"train": {"attention": "nope"}}},
        "profile_device": {"extends": "ci", "attention_profile": {"device": "cudaa"}},
        "profile_backend": {"extends": "ci", "attention_profile": {"backends": ["sdpa", "fast"]}},
        "profile_context": {"extends": "ci", "attention_profile": {"decode_contexts": [0, 4096]}},
        "profile_dtype": {"extends": "ci", "attention_profile": {"dtype": "fp64"}},
        "nb_resamples": {"extends": "ci", "notebooks": {"05_cost_optimal": {"resamples": -5}}},
        "nb_context": {"extends": "ci", "notebooks": {"04_scaling_fits": {"context": 0}}},
        "nb_contexts_order": {"extends": "ci", "notebooks": {"05_cost_optimal": {"contexts": [131072, 8192]}}},
        "nb_baseline": {"extends": "ci", "notebooks": {"05_cost_optimal": {"baseline": [8, 3]}}},
        "nb_preset": {"extends": "ci", "notebooks": {"01_cost_model": {"baseline": "paper-9b"}}},
        "nb_hardware": {"extends": "ci", "notebooks": {"05_cost_optimal": {"regime_hardware": "tpu"}}},
        "nb_batches": {"extends": "ci", "notebooks": {"05_cost_optimal": {"regime_batches": [0, 16]}}},
        "nb_dtype": {"extends": "ci", "notebooks": {"04_scaling_fits": {"dtype": "fp12"}}},
        "nb_vocab": {"extends": "ci", "notebooks": {"03_training": {"vocab_size": 4294967296}}},
        "nb_max_bytes": {"extends": "ci", "notebooks": {"03_training": {"max_bytes": 1000}}},
        "nb_heads": {"extends": "ci", "notebooks": {"03_training": {"n_heads": 4, "n_kv_heads": 3}}},
        "nb_lr": {"extends": "ci", "notebooks": {"03_training": {"lr": -0.1}}},
        "nb_targets": {"extends": "ci", "notebooks": {"05_cost_optimal": {"targets": [3.0, -1]}}},
    }
    for name, values in profiles.items():
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(values))
    (tmp / "broken.yaml").write_text("notebooks: [unclosed\n")
    bomb = ["extends: ci", 'l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (tmp / "alias_bomb.yaml").write_text("\n".join(bomb) + "\n")  # 9^9 values once expanded
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "notebook.ipynb").write_text("{}")


CASES = [
    # cost
    (["cost"], "--context is required"),
    (["cost", "--context", "128k"], "give --preset NAME"),
    (["cost", "--preset", "nope", "--context", "1k"], "nope"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "12q"], "12q"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "-5"], "-5"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1.5"], "1.5"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "0"], "at least 1 token"),
    (["plan", "--context", "0", "--target-loss", "2.6"], "at least 1 token"),
    (["cost", "--layers", "2", "--d-model", "64", "--heads", "6", "--kv-heads", "4", "--context", "1k"],
     "n_kv_heads=4"),
    (["cost", "--layers", "2", "--d-model", "64", "--heads", "6", "--kv-heads", "0", "--context", "1k"],
     "n_kv_heads=0"),
    (["cost", "--layers", "0", "--d-model", "64", "--heads", "4", "--context", "1k"], "layers"),
    (["cost", "--layers", "two", "--d-model", "64", "--heads", "4", "--context", "1k"], "two"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--dtype", "fp13"], "fp13"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--kv-dtype", "int3"], "int3"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--batch", "0"], "0"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--alpha", "nan"], "nan"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--beta", "inf"], "inf"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--lambda", "-0.1"], "lambda"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--alpha", "0"], "alpha"),
    (["cost", "--preset", "llama-3.1-8b", "--context", "1k", "--params", "some"], "some"),
    (["cost", "--preset", "llama-3.1-8b", "--heads", "12", "--context", "1k"], "give --kv-heads"),
    (["cost", "--preset", "llama-3.1-8b", "--config", "{tmp}/folder", "--context", "1k"], "not both"),
    (["cost", "--config", "{tmp}/folder", "--context", "1k"], "config.json"),
    (["cost", "--config", "{tmp}/nowhere", "--context", "1k"], "nowhere"),
    (["cost", "--config", "{tmp}/notjson.json", "--context", "1k"], "notjson.json"),
    (["cost", "--config", "{tmp}/list.json", "--context", "1k"], "model_type"),
    # plan and fit
    (["plan", "--target-loss", "2.6"], "--context"),
    (["plan", "--context", "128k"], "--target-loss"),
    (["plan", "--context", "128k", "--target-loss", "100"], "above every loss"),
    (["plan", "--context", "128k", "--target-loss", "1.0"], "unreachable"),
    (["plan", "--context", "8k", "--target-loss", "2.0755"], "beyond any model that can be built (10^15)"),
    (["plan", "--context", "128k", "--target-loss", "inf"], "inf"),
    (["plan", "--context", "128k", "--target-loss", "nan"], "nan"),
    (["plan", "--context", "128k", "--target-loss", "low"], "low"),
    (["plan", "--context", "0x1", "--target-loss", "2.6"], "0x1"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline", "32,7"], "n_kv_heads=7"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline", "32"], "32"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline", "16,4"], "--baseline-shape"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline-shape", "24,2048"], "--baseline"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline", "16,4", "--baseline-shape", "0,2048"],
     "0,2048"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline-loss", "2.7"], "--baseline"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--baseline", "8,1", "--baseline-loss", "2.7"],
     "--baseline-shape"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--candidates", "32,8"], "32,8"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--max-extrapolation", "0.5"], "0.5"),
    (["plan", "--context", "128k", "--target-loss", "2.3", "--max-extrapolation", "2"], "beyond 2x"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--runs", "{tmp}/missing.jsonl"], "missing.jsonl"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--runs", "{tmp}/a", "--fits", "{tmp}/b"], "not both"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--fits", "{tmp}/notjson.json"], "notjson.json"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--fits", "{tmp}/nofits.json"], "nofits.json"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--fits", "{tmp}/list.json"], "list.json"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--fits", "{tmp}/negfit.json"], "negfit.json"),
    (["plan", "--context", "128k", "--target-loss", "2.6", "--fits", "{tmp}/nowhere.json"], "nowhere.json"),
    *[(["plan", "--context", "8k", "--target-loss", "2.6", "--fits", f"{{tmp}}/{name}.json"], named)
      for name, named in (
        ("fit_fractional", "n_heads"), ("fit_negative_e", "e: expected a finite number >= 0, got -0.5"),
        ("fit_inverted", "inverted"),
        ("fit_exponent", "b: expected a finite number > 0 and <= 5, got 40.0"), ("fit_kv_not_dividing", "fits[0]"),
        ("fit_bool_heads", "n_heads"),
        ("fit_nan_a", "a: expected a finite number > 0"), ("fit_range_shape", "loss_range"),
        ("fit_duplicate", "a second fit"),
        ("fit_head_dim", "head_dim"), ("fit_setting", "params"), ("fit_anchors", "anchors"),
        ("fit_empty", "non-empty"))],
    # plan and table4: the serving regime
    *[([command, "--context", "32k", "--target-loss", "2.7", *flags] if command == "plan" else [command, *flags], named)
      for command in ("plan", "table4") for flags, named in (
          (["--objective", "time"], "--hardware"), (["--hardware", "h1000"], "h1000"),
          (["--kv-dtype", "fp7"], "fp7"), (["--weights-dtype", "int3"], "int3"), (["--lambda", "1.5"], "lambda"),
          (["--alpha", "-1"], "alpha"), (["--beta", "0"], "beta"), (["--batch", "0"], "--batch"),
          (["--batch", "two"], "two"), (["--resamples", "-5"], "--resamples"), (["--accounting", "mine"], "mine"),
          (["--objective", "speed"], "speed"))],
    (["cost", "--preset", "llama-3.1-8b", "--context", "8k", "--hardware", "tpu"], "tpu"),
    *[(["cost", "--config", f"{{tmp}}/config_{name}", "--context", "8k"], named) for name, named in (
        ("head_dim_0", "head_dim must be a positive whole number, got 0"), ("head_dim_str", "got '64'"),
        ("kv_5", "not a multiple of num_key_value_heads = 5"), ("layers_neg", "num_hidden_layers"),
        ("vocab_float", "vocab_size"))],
    (["fit", "--runs", "{tmp}/corrupt.jsonl"], "corrupt.jsonl:2"),
    (["fit", "--out", "{tmp}/nowhere/fits.json"], "folder {tmp}/nowhere does not exist"),
    (["fit", "--out", "{tmp}/folder"], "is a folder"),
    (["profile", "--profile", "ci", "--out", "{tmp}/nowhere/p.csv"], "does not exist"),
    (["digitise", "../shared/paper/fig2.png", "--out", "{tmp}/folder"], "is a folder"),
    (["fit", "--runs", "{tmp}/empty.jsonl"], "empty.jsonl"),
    (["fit", "--runs", "{tmp}/record_val_loss_None.jsonl"], "val_loss"),
    (["fit", "--runs", "{tmp}/record_n_heads_four.jsonl"], "n_heads"),
    (["fit", "--runs", "{tmp}/record_n_non_embedding_-1.jsonl"], "n_non_embedding"),
    (["fit", "--runs", "{tmp}/record_val_loss_nan.jsonl"], "val_loss"),
    (["fit", "--runs", "{tmp}/record_val_loss_-2.0.jsonl"], "val_loss must be a positive loss"),
    (["fit", "--runs", "{tmp}/record_n_kv_heads_3.jsonl"], "not a multiple of n_kv_heads = 3"),
    (["fit", "--resamples", "many"], "many"),
    # train, data, sweep, bench, profile (each refused before any work starts)
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--tokens-per-param", "-5"], "tokens_per_param"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--eval-interval", "-1"], "eval_interval"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--lr", "0"], "lr"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--lr", "nan"], "nan"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--context", "0"], "context"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--batch-size", "0"], "0"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "6", "--kv-heads", "4"], "n_kv_heads=4"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--device", "cuda"], "CUDA"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--device", "tpu"], "tpu"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--attention", "flashy"], "flashy"),
    (["train", "--layers", "1", "--d-model", "32"], "missing"),
    (["train", "--preset", "nope"], "nope"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--tokens", "1.5"], "1.5"),
    (["train", "--layers", "1", "--d-model", "32", "--heads", "4", "--val-percent", "80"], "val_percent"),
    (["data", "prepare", "--vocab-size", "100"], "vocab_size"),
    (["data", "prepare", "--val-percent", "0"], "val_percent"),
    (["data", "prepare", "--max-bytes", "0"], "0"),
    (["data", "prepare", "--corpus", "weird:thing"], "weird:thing"),
    (["data", "prepare", "--corpus", "files:{tmp}/none/*.py"], "no file matches"),
    (["sweep", "--profile", "nope"], "nope"),
    (["sweep", "--profile", "{tmp}/bad_train.yaml", "--dry-run"], "tokens_per_param"),
    (["sweep", "--profile", "{tmp}/bad_lr.yaml"], "sweep.train.lr"),
    (["sweep", "--profile", "{tmp}/bad_heads.yaml"], "n_kv_heads=3"),
    (["sweep", "--profile", "ci", "--limit", "0"], "0"),
    (["bench", "train", "--context", "0"], "0"),
    (["bench", "train", "--steps", "0"], "0"),
    (["bench", "train", "--profile", "nope"], "nope"),
    (["bench", "fit", "--resamples", "0"], "0"),
    (["profile", "--profile", "nope"], "nope"),
    (["profile", "--profile", "ci", "--dtype", "fp64"], "fp64"),
    (["profile", "--profile", "ci", "--device", "cuda"], "CUDA"),
    (["profile", "--profile", "{tmp}/bad_attention.yaml"], "n_head"),
    # digitise, render
    (["digitise", "{tmp}/nothere.png"], "nothere.png"),
    (["digitise", "{tmp}/folder"], "folder"),
    (["digitise", "{tmp}/text.png"], "text.png"),
    (["digitise", "{tmp}/truncated.png"], "truncated.png"),
    (["render", "{tmp}/nothere.ipynb"], "nothere.ipynb"),
    (["render", "{tmp}/notebook.ipynb"], "notebook.ipynb"),
    (["render", "{tmp}/text.png"], "text.png"),
    # book and profiles
    (["book", "--profile", "nope"], "nope"),
    (["book", "--profile", "{tmp}/typo_nb.yaml"], "06_paper_chek"),
    (["book", "--profile", "{tmp}/typo_param.yaml"], "bar_contxt"),
    (["book", "--profile", "{tmp}/bad_type.yaml"], "context"),
    (["book", "--profile", "{tmp}/bad_section.yaml"], "sweeps"),
    (["book", "--profile", "{tmp}/bad_attention.yaml"], "n_head"),
    (["book", "--profile", "{tmp}/bad_train.yaml"], "tokens_per_param"),
    (["book", "--profile", "{tmp}/loop.yaml"], "loops"),
    (["book", "--profile", "{tmp}/missing_parent.yaml"], "gpu-big"),
    (["book", "--profile", "{tmp}/broken.yaml"], "broken.yaml:"),
    (["book", "--profile", "{tmp}/list.yaml"], "list.yaml"),
    (["book", "--profile", "{tmp}/headline.yaml"], "headline_context"),
    (["sweep", "--profile", "{tmp}/alias_bomb.yaml", "--dry-run"], "alias (*l0)"),
    (["readings", "--grid", "{tmp}/alias_bomb.yaml"], "alias (*l0)"),
    *[([command, "--profile", f"{{tmp}}/{name}.yaml", *extra], named)
      for command, extra in (("book", []), ("sweep", ["--dry-run"]))
      for name, named in (("betas", "betas must be two numbers in [0, 1)"), ("device_typo", "cpux"),
                          ("attention_typo", "nope"), ("profile_device", "cudaa"), ("profile_backend", "fast"),
                          ("profile_context", "decode_contexts"), ("profile_dtype", "fp64"),
                          ("nb_resamples", "05_cost_optimal.resamples"), ("nb_context", "04_scaling_fits.context"),
                          ("nb_contexts_order", "must grow"), ("nb_baseline", "05_cost_optimal.baseline"),
                          ("nb_preset", "paper-9b"), ("nb_hardware", "tpu"), ("nb_batches", "regime_batches"),
                          ("nb_dtype", "fp12"), ("nb_vocab", "vocab_size"), ("nb_max_bytes", "max_bytes"),
                          ("nb_heads", "n_kv must divide n_h"), ("nb_lr", "03_training.lr"),
                          ("nb_targets", "targets"))
      if command == "book" or not name.startswith("nb_")],  # the ML commands never read the notebooks' part
    (["profile", "--profile", "{tmp}/profile_backend.yaml", "--checks-only"], "fast"),
    (["sweep", "--profile", "ci", "--executor", "slurm", "--gpus-per-node", "-3"], "--gpus-per-node"),
    (["train", "--vocab-size", "4294967296", "--layers", "1", "--d-model", "32", "--heads", "4", "--head-dim", "8"],
     "vocab_size"),
    (["book", "--profile", "ci", "--only", "07_nothing"], "07_nothing"),
    (["book", "--profile", "ci", "--check", "--no-html"], "--check"),
    (["nonsense"], "nonsense"),
    # readings
    (["readings", "--grid", "{tmp}/nothere.yaml"], "nothere.yaml"),
    (["readings", "--grid", "{tmp}/broken.yaml"], "broken.yaml"),
    (["readings", "--grid", "{tmp}/grid_no_allows.yaml"], "table9_32x8.allows"),
    (["readings", "--grid", "{tmp}/grid_bad_rule.yaml"], "cubic"),
    (["readings", "--grid", "{tmp}/grid_bad_default.yaml"], "gpt2"),
    (["readings", "--grid", "{tmp}/grid_bad_delta.yaml"], "huber_delta"),
    (["readings", "--grid", "{tmp}/grid_extra_point.yaml"], "tokenizer"),
    (["readings", "--resamples", "0"], "0"),
]


def _data_digest() -> str:
    h = hashlib.sha256()
    for path in sorted((ROOT / "data").rglob("*")):
        if path.is_file() and not path.name.endswith(".lock"):
            h.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    _files(tmp)
    return tmp


def test_the_table_is_large():
    assert len(CASES) >= 80
    assert len({c[0][0] for c in CASES}) >= 11  # every subcommand


BOOK_COMMANDS = ("book", "run", "render", "exercise")  # a checkout's: skipped in an unpacked sdist
@pytest.mark.parametrize("argv, bad", [pytest.param(*c, marks=pytest.mark.checkout) if c[0][0] in BOOK_COMMANDS else c
                                       for c in CASES], ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_data_alone(capsys, bad_files, monkeypatch, argv, bad):
    monkeypatch.setenv("GQA_CACHE", str(bad_files / "tokens"))  # no token cache is built in the repository
    before = _data_digest()
    argv = [a.replace("{tmp}", str(bad_files)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and bad.replace("{tmp}", str(bad_files)) in lines[0], lines[0]
    assert _data_digest() == before


@pytest.mark.parametrize("content, message", [
    ("panel,n_h,n_kv,x,loss,pixel_x,pixel_y,score,found_by\n", "holds no rows"),
    ("panel,n_h,n_kv,x,loss\nmemory,8,8,abc,3.0\n", "fig2_points.csv:2: column 'x'"),
    ("panel,n_h,n_kv,loss\nmemory,8,8,3.0\n", "no column 'x'"),
    ("panel,n_h,n_kv,x,loss\nmemory,8,8,1e9,-3.0\n", "fig2_points.csv:2: column 'loss' needs a number > 0"),
    ("panel,n_h,n_kv,x,loss\nmemory,8.5,8,1e9,3.0\n", "column 'n_h' needs a whole number > 0"),
    ("panel,n_h,n_kv,x,loss\nmemory,8,3,1e9,3.0\n", "n_h = 8 is not a multiple of n_kv = 3"),
    ("panel,n_h,n_kv,x,loss\nmemory,8,8,0,3.0\n", "column 'x' needs a number > 0"),
])
def test_damaged_paper_tables_are_named_with_their_line(tmp_path, capsys, monkeypatch, content, message):
    for path in paper.DATA_DIR.glob("*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "fig2_points.csv").write_text(content)
    monkeypatch.setattr(paper, "DATA_DIR", tmp_path)
    assert main(["plan", "--context", "128k", "--target-loss", "2.6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_table4_with_a_negative_context_is_refused(tmp_path, capsys, monkeypatch):
    for path in paper.DATA_DIR.glob("*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    text = (tmp_path / "table4.csv").read_text().splitlines()
    header, first = text[0], text[1].split(",")
    first[header.split(",").index("context")] = "-8192"
    (tmp_path / "table4.csv").write_text("\n".join([header, ",".join(first), *text[2:]]) + "\n")
    monkeypatch.setattr(paper, "DATA_DIR", tmp_path)
    assert main(["table4", "--resamples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "table4.csv:2: column 'context' needs a whole number > 0" in err


@pytest.mark.parametrize("variable", ["GQA_WORK_DIR", "GQA_CACHE"])
def test_a_folder_variable_naming_a_file_is_named(tmp_path, capsys, monkeypatch, variable):
    target = tmp_path / "file"
    target.write_text("x")
    monkeypatch.setenv(variable, str(target))
    assert main(["cost", "--preset", "paper-1.2b", "--context", "8k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{variable}={target} names a file" in err


@pytest.mark.parametrize("make, message", [(lambda p: p.write_text("x"), "names a file"),
                                           (lambda p: None, "does not exist")])
def test_a_runs_dir_that_is_not_a_folder_is_named(tmp_path, capsys, monkeypatch, make, message):
    target = tmp_path / "runs"
    make(target)
    monkeypatch.setenv("GQA_RUNS_DIR", str(target))
    assert main(["sweep", "--profile", "ci", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"GQA_RUNS_DIR={target}" in err and message in err
