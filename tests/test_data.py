"""Corpora, tokenizer and token cache."""

import numpy as np
import pytest

from gqa import data


def test_prepare_round_trip_and_split(data_cache, small_corpus):
    spec = data.DataSpec(small_corpus, vocab_size=400, val_percent=10)
    prepared = data.prepare(spec, log=lambda *a: None)
    train, val = prepared.tokens("train"), prepared.tokens("val")
    assert train.dtype == np.uint16 and len(train) > 1000
    assert len(val) >= 0.01 * (len(train) + len(val))
    # byte-level BPE is lossless: the first document decodes back to its text
    tok = prepared.tokenizer()
    eos = prepared.eos_id
    first_end = int(np.argmax(np.asarray(train) == eos))
    docs = list(data.iter_documents(small_corpus))
    train_docs = [d for d in docs if not data.is_validation(d.name, 10)]
    assert tok.decode(list(map(int, train[:first_end]))) == train_docs[0].text
    assert int((np.asarray(train) == eos).sum()) == len(train_docs)


def test_cache_is_reused_and_a_damaged_cache_rebuilt(data_cache, small_corpus):
    spec = data.DataSpec(small_corpus, vocab_size=400, val_percent=10)
    first = data.prepare(spec, log=lambda *a: None)
    messages = []
    again = data.prepare(spec, log=messages.append)
    assert again.directory == first.directory and messages == []  # no retraining
    path = first.directory / "train.bin"
    path.write_bytes(path.read_bytes()[:-10])  # truncate
    with pytest.raises(ValueError, match="truncated"):
        data.verify(first.directory)
    rebuilt = data.prepare(spec, log=messages.append)
    assert any("rebuilding" in m for m in messages)
    assert np.array_equal(np.asarray(rebuilt.tokens("train")), np.asarray(again.tokens("train")))
    raw = bytearray(path.read_bytes())
    raw[0] ^= 1  # same size, different content
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        data.verify(first.directory)


def test_a_changed_corpus_gets_a_new_cache(data_cache, small_corpus, tmp_path):
    spec = data.DataSpec(small_corpus, vocab_size=400, val_percent=10)
    before = data.prepare(spec, log=lambda *a: None).directory
    (tmp_path / "corpus" / "doc000.py").write_text("x = 1\n")
    after = data.prepare(spec, log=lambda *a: None).directory
    assert after != before


def test_empty_and_missing_corpora_are_clear_errors(data_cache, tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches"):
        data.prepare(data.DataSpec(f"files:{tmp_path}/nothing/*.txt", 300))
    (tmp_path / "blank.txt").write_text("   \n")
    with pytest.raises(ValueError, match="empty"):
        data.prepare(data.DataSpec(f"files:{tmp_path}/blank.txt", 300))
    with pytest.raises(ValueError, match="unknown corpus"):
        data.prepare(data.DataSpec("ftp://corpus", 300))
    with pytest.raises(ValueError, match="vocab_size"):
        data.DataSpec("python-stdlib", vocab_size=100)


def test_stdlib_corpus_is_offline_and_ordered():
    first = [d.name for d in data.iter_documents("python-stdlib", max_bytes=200_000)]
    assert first == [d.name for d in data.iter_documents("python-stdlib", max_bytes=200_000)]
    assert first == sorted(first) and all(n.endswith(".py") for n in first)
    assert data.corpus_fingerprint("python-stdlib", 50_000) == data.corpus_fingerprint("python-stdlib", 50_000)


def test_batches_are_deterministic_by_position():
    tokens = np.arange(1000, dtype=np.uint16)
    a = data.batch_at(tokens, context=9, batch_size=4, position=8, seed=3)
    assert a.shape == (4, 10) and a.dtype == np.int64
    assert np.array_equal(a, data.batch_at(tokens, 9, 4, 8, 3))
    assert np.all(np.diff(a, axis=1) == 1)  # contiguous windows
    assert (a[:, 0] % 9 == 0).all()  # aligned to non-overlapping chunks
    n = data.num_chunks(tokens, 9)
    epoch = np.concatenate([data.batch_at(tokens, 9, 1, i, 3) for i in range(n)])
    assert sorted(epoch[:, 0].tolist()) == [9 * i for i in range(n)]  # each chunk once per epoch
    assert not np.array_equal(data.batch_at(tokens, 9, 4, 0, 3), data.batch_at(tokens, 9, 4, 0, 4))
    with pytest.raises(ValueError, match="too few"):
        data.batch_at(tokens[:5], 9, 1, 0, 0)


def test_a_file_reached_twice_is_read_once(tmp_path):
    """A symlinked folder (here a loop back to its parent) would give one text two names, and the
    document-level split could put it in training and validation at once."""
    from gqa.data import iter_documents

    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.py").write_text("x = 1\n")
    (folder / "sub" / "b.py").write_text("y = 2\n")
    (folder / "sub" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "again.py").symlink_to(folder / "a.py")
    docs = list(iter_documents(f"files:{folder}/**/*.py"))
    assert sorted(d.text for d in docs) == ["x = 1\n", "y = 2\n"]


def test_a_stream_corpus_needs_a_bound():
    from gqa.data import DataSpec

    with pytest.raises(ValueError, match="give --max-bytes"):
        DataSpec("hf:some/corpus")
    assert DataSpec("hf:some/corpus", max_bytes=10**6).max_bytes == 10**6
