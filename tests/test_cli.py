import json
import subprocess
import sys

import pytest

from gqa.cli import main


def run_json(capsys, *argv):
    assert main(["cost", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_json_equals_hand_derived_numbers(capsys):
    r = run_json(capsys, "--layers", "36", "--d-model", "1536", "--heads", "32", "--kv-heads", "8",
                 "--context", "131072")
    assert r["params"] == {"total": 1_039_859_712, "active": 1_039_859_712, "active_matmul": 1_039_859_712,
                           "non_embedding": 962_592_768,
                           "norms": 73 * 1536, "numel": 1_039_859_712 + 73 * 1536}
    assert r["flops_per_token"] == {"time_invariant": 2_079_719_424,
                                    "time_variant": 38_654_705_664,
                                    "total": 40_734_425_088}
    assert r["memory_values"] == {"weights": 1_039_859_712, "kv_cache": 4_831_838_208,
                                  "total": 5_871_697_920}
    assert r["memory_bytes"] == {"weights": 2_079_719_424, "kv_cache": 9_663_676_416,
                                 "total": 11_743_395_840}
    assert r["z"] == pytest.approx(0.9 * 5_871_697_920 ** 0.5 + 0.1 * 40_734_425_088 ** (1 / 3))


def test_cost_json_small_explicit_shape(capsys):
    r = run_json(capsys, "--layers", "4", "--d-model", "256", "--heads", "4", "--kv-heads", "1",
                 "--head-dim", "32", "--vocab", "1000", "--context", "1000", "--dtype", "fp32")
    assert r["flops_per_token"]["total"] == 5_492_736 + 2_048_000
    assert r["memory_bytes"]["kv_cache"] == 4 * 256_000


def test_preset_llama_8b_kv_cache_bytes(capsys):
    r = run_json(capsys, "--preset", "llama-3.1-8b", "--context", "128k")
    assert r["memory_bytes"]["kv_cache"] == 17_179_869_184
    assert r["context"] == 131_072


def test_preset_with_head_override_and_batch(capsys):
    r = run_json(capsys, "--preset", "paper-1.2b", "--heads", "8", "--kv-heads", "1",
                 "--context", "1m", "--batch", "4", "--kv-dtype", "fp8")
    assert r["shape"]["n_heads"] == 8 and r["shape"]["n_kv_heads"] == 1
    assert r["memory_bytes"]["kv_cache"] == 4 * 2 * 2**20 * 36 * 64 * 1 * 1
    assert r["flops_per_decode_step"] == 4 * r["flops_per_token"]["total"]


def test_table_output_and_presets(capsys):
    assert main(["cost", "--preset", "qwen2.5-7b", "--context", "32k"]) == 0
    out = capsys.readouterr().out
    assert "KV cache" in out and "32K (32,768 tokens)" in out
    assert main(["cost", "--list-presets"]) == 0
    assert "mistral-7b-v0.3" in capsys.readouterr().out


@pytest.mark.parametrize("argv, bad", [
    (["--layers", "4", "--d-model", "256", "--heads", "6", "--kv-heads", "4", "--context", "1k"], "6"),
    (["--preset", "paper-1.2b", "--context", "-1"], "-1"),
    (["--preset", "paper-1.2b", "--context", "12q"], "12q"),
    (["--preset", "no-such-model", "--context", "1k"], "no-such-model"),
    (["--layers", "0", "--d-model", "256", "--heads", "4", "--context", "1k"], "0"),
])
def test_bad_input_one_line_error(capsys, argv, bad):
    assert exit_code(["cost", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and bad in err and "Traceback" not in err


def exit_code(argv):
    """main's status, whether returned or raised by argparse."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def test_console_script_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "gqa.cli", "cost", "--heads", "6", "--kv-heads", "4",
                           "--layers", "2", "--d-model", "64", "--context", "8"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "n_kv_heads=4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_calling_main_in_process_leaves_sigpipe_alone(capsys):
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    assert main(["cost", "--preset", "paper-3m", "--context", "1k"]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before  # a caller's broken pipe must not kill it


def test_console_command_ends_quietly_when_its_reader_goes_away():
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "gqa.cli", "cost", "--preset", "paper-3m", "--context", "1k"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` exiting before the command writes
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == -signal.SIGPIPE and "Traceback" not in stderr


def test_a_mistyped_option_is_named_by_its_command_with_the_closest_option(capsys):
    assert main(["cost", "--preset", "paper-3m", "--contxt", "3"]) == 2
    assert capsys.readouterr().err.strip() == ("gqa cost: error: unrecognized arguments: --contxt 3 "
                                               "(did you mean --context?)")
    assert main(["bench", "train", "--stepz", "3"]) == 2
    err = capsys.readouterr().err
    assert "gqa bench train: error: unrecognized arguments: --stepz 3 (did you mean --steps?)" in err


def test_a_broken_or_clashing_command_plugin_is_named_and_never_fatal(monkeypatch, capsys):
    """An entry point of group gqa.commands that fails to load (an editable install whose folder is gone), or
    that would replace a command, gets one warning line; every other command works."""
    from importlib import metadata

    from gqa.cli import main as gqa_main

    class Broken:
        value = "gone_package.commands:add"

        def load(self):
            raise ModuleNotFoundError("No module named 'gone_package'")

    class Clashing:
        value = "other.commands:add"

        def load(self):
            return lambda sub: sub.add_parser("cost", help="not the real one")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [Broken(), Clashing()])
    assert gqa_main(["cost", "--preset", "llama-3.1-8b", "--context", "8k", "--json"]) == 0
    captured = capsys.readouterr()
    assert '"model"' in captured.out or '"params"' in captured.out
    warnings = [line for line in captured.err.splitlines() if line.startswith("gqa: warning:")]
    assert len(warnings) == 2 and "gone_package" in warnings[0] and "replace the command `gqa cost`" in warnings[1]
    assert gqa_main(["book", "--profile", "ci"]) == 2  # the book tools did not load: one line says what is needed
    assert "book tools" in capsys.readouterr().err


def test_effect_prints_chapter_5_s_verdict_and_its_json_matches_the_library(capsys):
    from gqa import effect

    assert main(["effect", "--resamples", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    study = effect.load(resamples=20)
    verdict = effect.assess(study.fits, study.boot, effect.default_targets(study.fits), list(effect.CONTEXTS),
                            study.setting, study.boot_high)
    assert (out["outcome"], out["agreement"], out["agreement_high"]) == (verdict.outcome, verdict.agreement,
                                                                          verdict.agreement_high)
    assert [r["target"] for r in out["rows"]] == [r.target for r in verdict.rows]
    assert main(["effect", "--resamples", "20", "--contexts", "1k", "128k"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Of the 20 runs the study plans,") and "\n    L*      1K   128K" in text
    assert effect.verdict_words(study, verdict)["eff_verdict"].split(":")[0] in text  # Yes / No / Cannot test
    assert "dagger" not in text  # the book's grid has daggers; this table marks the inside rows with *


@pytest.mark.parametrize("argv, message", [
    (["--profile", "nosuch"], "unknown profile 'nosuch'"),
    (["--contexts", "8k", "512"], "--contexts must increase, got 8K, 512"),
    (["--contexts", "0"], "must be at least 1 token"),
    (["--resamples", "0"], "must be a positive integer, got 0"),
])
def test_effect_refuses_bad_input_in_one_line(capsys, argv, message):
    assert main(["effect", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
