"""Real architectures measured: the cache tensors of models transformers builds equal gqa cost's KV bytes
(sliding windows included), and `gqa bench real` writes its table."""

import csv

import pytest

from gqa import real_models

TINY = {
    "tiny-llama": ("LlamaConfig", dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, vocab_size=101, max_position_embeddings=512,
                                       tie_word_embeddings=True)),
    "tiny-gemma3": ("Gemma3TextConfig", dict(hidden_size=64, intermediate_size=96, num_hidden_layers=7,
                                             num_attention_heads=4, num_key_value_heads=1, head_dim=16, vocab_size=101,
                                             sliding_window=16, max_position_embeddings=512,
                                             tie_word_embeddings=True)),
}


@pytest.mark.parametrize("name", TINY)
def test_measured_cache_bytes_equal_the_prediction(tmp_path, monkeypatch, name):
    monkeypatch.setattr(real_models, "MODELS", TINY)
    rows = real_models.measure(name, (8, 40), decode_steps=2, work=tmp_path, bandwidth=1e10, log=lambda *a: None)
    for row in rows:
        assert row.kv_bytes == row.kv_bytes_predicted  # bf16 cache tensors, byte for byte
        assert row.peak_rss_bytes > row.weight_bytes and row.decode_tokens_per_s > 0
        assert row.decode_vs_roofline == pytest.approx(row.decode_step_s / row.decode_step_predicted_s)
    if name == "tiny-gemma3":  # 6 of 7 layers slide over 16 tokens: the cache stops growing there
        full, local = 1, 6
        assert rows[1].kv_bytes == 2 * 2 * 16 * (full * 40 + local * 15)  # K and V, 1 head of 16, bf16, W − 1 = 15


def test_gqa_bench_real_writes_its_table(tmp_path, monkeypatch, capsys):
    from gqa.cli import main

    monkeypatch.setattr(real_models, "MODELS", TINY)
    monkeypatch.setattr(real_models, "read_bandwidth", lambda: 1e10)
    out = tmp_path / "real.csv"
    assert main(["bench", "real", "--models", "tiny-llama", "--contexts", "8", "16", "--steps", "1",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["context"]) for r in rows] == [8, 16] and set(rows[0]) == set(real_models.FIELDS)
    assert out.with_suffix(".json").exists()
    assert main(["bench", "real", "--models", "gpt-5", "--out", str(out)]) == 2
    assert "--models: unknown gpt-5" in capsys.readouterr().err


def test_summary_states_what_the_rows_show(tmp_path, monkeypatch):
    monkeypatch.setattr(real_models, "MODELS", TINY)
    rows = real_models.measure("tiny-llama", (8, 16), decode_steps=1, work=tmp_path, bandwidth=1e10,
                               log=lambda *a: None)
    real_models.write_csv(rows, tmp_path / "real_models_x.csv", {"cpu": "a CPU", "threads": 2})
    frame, machine = real_models.load(tmp_path)
    said = real_models.summary(frame, machine)
    assert said["real_kv"] == "the cache tensors after the prefill equal the predicted KV bytes in 2 of 2 measurements"
    assert "tiny-llama" in said["real_decode"] and "times the predicted weights and cache" in said["real_memory"]
    assert "tiny-llama at 8 to 16 tokens" in said["real_what"] and "real_models_x.csv" in said["real_what"]
