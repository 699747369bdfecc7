"""Corpora, a byte-level BPE tokenizer, and token streams cached as fingerprinted numpy memmaps.

Corpora (a spec string):
  python-stdlib   the running interpreter's standard-library .py files, sorted (no network)
  files:GLOB      local text files matching GLOB, sorted
  hf:NAME[:SPLIT] a Hugging Face dataset streamed through `datasets`, only when asked for (SlimPajama
                  in the paper, e.g. hf:cerebras/SlimPajama-627B); needs `pip install datasets`

Each file (or record) is a document. Documents are split into train and validation by a hash of their
name, then tokenized, joined with an EOS token between documents and stored as one uint16/uint32 stream
per split. A prepared dataset lives in a folder keyed by the corpus fingerprint and the tokenizer
settings; `meta.json` records the token counts and the SHA-256 of each stream, checked on every load.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import shutil
import sysconfig
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gqa.paths import CACHE_DIR, env_folder, file_sha256

EOS = "<|endoftext|>"
DEFAULT_CACHE = CACHE_DIR / "gqa-data"
FORMAT_VERSION = 1


def cache_root() -> Path:
    return env_folder("GQA_CACHE") or DEFAULT_CACHE


# --- Corpora -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    name: str
    text: str


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py")
             if "site-packages" not in p.parts and "__pycache__" not in p.parts]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def iter_documents(spec: str, max_bytes: int | None = None) -> Iterator[Document]:
    """Documents of a corpus in a fixed order, stopping once `max_bytes` of text were produced."""
    produced = 0

    def take(doc: Document) -> bool:
        nonlocal produced
        produced += len(doc.text.encode())
        return max_bytes is None or produced <= max_bytes

    if spec == "python-stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        for path in _stdlib_files():
            doc = Document(path.relative_to(root).as_posix(), _read_text(path))
            if doc.text.strip():
                if not take(doc):
                    return
                yield doc
    elif spec.startswith("files:"):
        pattern = spec[len("files:"):]
        paths, seen = [], set()
        for p in sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()):
            real = p.resolve()
            if real not in seen:  # a file reached twice (a symlink, a loop) is read once: it cannot land
                seen.add(real)  # in both the training and the validation split under two names
                paths.append(p)
        if not paths:
            raise FileNotFoundError(f"corpus {spec!r}: no file matches {pattern!r}")
        for path in paths:
            doc = Document(str(path), _read_text(path))
            if doc.text.strip():
                if not take(doc):
                    return
                yield doc
    elif spec.startswith("hf:"):
        try:
            import datasets
        except ImportError:
            raise ValueError(f"corpus {spec!r} needs the `datasets` package: pip install datasets") from None
        name, _, split = spec[len("hf:"):].partition(":")
        stream = datasets.load_dataset(name, split=split or "train", streaming=True)
        for i, record in enumerate(stream):
            doc = Document(f"{name}/{i}", record["text"])
            if not take(doc):
                return
            yield doc
    else:
        raise ValueError(f"unknown corpus {spec!r}: use python-stdlib, files:GLOB or hf:NAME[:SPLIT]")


def corpus_fingerprint(spec: str, max_bytes: int | None = None) -> str:
    """SHA-256 over the names and texts of a corpus's documents (what it tokenizes to depends on both)."""
    h = hashlib.sha256(f"{spec}|{max_bytes}".encode())
    count = 0
    for doc in iter_documents(spec, max_bytes):
        h.update(doc.name.encode() + b"\0" + doc.text.encode() + b"\0")
        count += 1
    if count == 0:
        raise ValueError(f"corpus {spec!r} is empty: no document with any text")
    return h.hexdigest()


def is_validation(name: str, percent: float) -> bool:
    """Deterministic document-level split: a document is held out if its name hashes below `percent`."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return digest % 10_000 < percent * 100


# --- Tokenizer and token streams -----------------------------------------------------------------------


MAX_VOCAB = 2**20  # beyond the largest published vocabularies (about 2^18), and far inside the tokenizer's u32


@dataclass(frozen=True)
class DataSpec:
    corpus: str = "python-stdlib"
    vocab_size: int = 4096
    val_percent: float = 2.0  # of documents; the prepared split must hold >= 1% of tokens
    max_bytes: int | None = None  # read at most this much text (None: the whole corpus)

    def __post_init__(self) -> None:
        if not 256 + 1 < self.vocab_size <= MAX_VOCAB:
            raise ValueError(f"vocab_size must lie in (257, {MAX_VOCAB:,}] (bytes + EOS at least; the largest "
                             f"published vocabularies hold about 256K), got {self.vocab_size}")
        if not 0 < self.val_percent < 50:
            raise ValueError(f"val_percent must lie in (0, 50), got {self.val_percent}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.corpus.startswith("hf:") and self.max_bytes is None:
            raise ValueError(f"corpus {self.corpus!r} is a stream that may not end: give --max-bytes (data.max_bytes "
                             "in a profile), the bytes of text to read from it")


def _train_tokenizer(docs: list[Document], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator((d.text for d in docs), trainer=trainer)
    return tokenizer


@dataclass
class Prepared:
    """A prepared dataset: tokenizer, train and validation token streams."""

    directory: Path
    meta: dict

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.meta["eos_id"])

    def tokens(self, split: str) -> np.memmap:
        info = self.meta["splits"][split]
        return np.memmap(self.directory / info["file"], dtype=info["dtype"], mode="r",
                         shape=(info["tokens"],))

    def tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.directory / "tokenizer.json"))


def dataset_dir(spec: DataSpec, fingerprint: str) -> Path:
    key = hashlib.sha256(json.dumps([FORMAT_VERSION, asdict(spec), fingerprint]).encode()).hexdigest()
    return cache_root() / key[:16]


def verify(directory: Path) -> Prepared:
    """Load a prepared dataset, checking every stream's size and SHA-256; ValueError if anything is off."""
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        raise ValueError(f"no prepared dataset at {directory} (meta.json missing)")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path}: not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"dataset at {directory} has format {found}, expected {FORMAT_VERSION}")
    if not isinstance(meta.get("splits"), dict) or set(meta["splits"]) != {"train", "val"}:
        raise ValueError(f"{meta_path}: needs `splits` with train and val")
    for key in ("vocab_size", "eos_id", "corpus_fingerprint"):
        if key not in meta:
            raise ValueError(f"{meta_path}: needs `{key}`")
    for split, info in meta["splits"].items():
        name = str(info.get("file", "")) if isinstance(info, dict) else ""
        if name and (Path(name).name != name or name in (".", "..")):
            raise ValueError(f"{meta_path}: split {split!r} names the file {name!r}; a split's stream is a file "
                             "in the dataset's own folder")
        try:
            path = directory / info["file"]
            expected = int(info["tokens"]) * np.dtype(info["dtype"]).itemsize
            recorded = str(info["sha256"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{meta_path}: split {split!r} lacks its file, tokens, dtype or sha256") from None
        if not path.exists() or path.stat().st_size != expected:
            raise ValueError(f"{split} tokens at {path} are missing or truncated "
                             f"({path.stat().st_size if path.exists() else 0} of {expected} bytes)")
        if file_sha256(path) != recorded:
            raise ValueError(f"{split} tokens at {path} do not match their recorded SHA-256")
    return Prepared(directory, meta)


def prepare(spec: DataSpec, *, rebuild: bool = False, log=print) -> Prepared:
    """Tokenize a corpus once and cache it; reuse a verified cache, rebuild a stale or broken one.

    The build holds a lock on the cache entry, so processes preparing the same corpus at once build it
    once (the others wait, then verify and reuse it), and leftovers of killed builds are removed."""
    from filelock import FileLock

    fingerprint = corpus_fingerprint(spec.corpus, spec.max_bytes)
    directory = dataset_dir(spec, fingerprint)
    if directory.exists() and not rebuild:  # the common case: no lock needed to read a finished cache
        try:
            return verify(directory)
        except ValueError:
            pass
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock", timeout=3600):
        for leftover in directory.parent.glob(directory.name + ".tmp*"):  # killed builds (we hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        if directory.exists() and not rebuild:
            try:
                return verify(directory)
            except ValueError as e:
                log(f"rebuilding the token cache: {e}")
        return _build(spec, fingerprint, directory, log)


def _build(spec: DataSpec, fingerprint: str, directory: Path, log) -> Prepared:
    docs = list(iter_documents(spec.corpus, spec.max_bytes))
    splits = {"train": [d for d in docs if not is_validation(d.name, spec.val_percent)],
              "val": [d for d in docs if is_validation(d.name, spec.val_percent)]}
    if not splits["val"] or not splits["train"]:
        raise ValueError(f"corpus {spec.corpus!r} has {len(docs)} documents: too few for a "
                         f"{spec.val_percent}% validation split by document")
    log(f"training a {spec.vocab_size}-token BPE tokenizer on {len(splits['train'])} documents ...")
    tokenizer = _train_tokenizer(splits["train"], spec.vocab_size)
    eos_id = tokenizer.token_to_id(EOS)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 2**16 else np.uint32

    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer.save(str(tmp / "tokenizer.json"))
    meta = {"format": FORMAT_VERSION, "spec": asdict(spec), "corpus_fingerprint": fingerprint,
            "vocab_size": tokenizer.get_vocab_size(), "eos_id": eos_id, "splits": {}}
    for split, split_docs in splits.items():
        encoded = tokenizer.encode_batch([d.text for d in split_docs])
        ids = np.fromiter((t for enc in encoded for t in (*enc.ids, eos_id)), dtype=dtype)
        path = tmp / f"{split}.bin"
        ids.tofile(path)
        meta["splits"][split] = {"file": path.name, "dtype": np.dtype(dtype).name, "tokens": int(ids.size),
                                 "documents": len(split_docs), "sha256": file_sha256(path)}
    total = sum(s["tokens"] for s in meta["splits"].values())
    if meta["splits"]["val"]["tokens"] < 0.01 * total:
        shutil.rmtree(tmp)
        raise ValueError(f"validation split holds {meta['splits']['val']['tokens']} of {total} tokens "
                         f"(< 1%); raise val_percent above {spec.val_percent}")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.replace(directory)
    log(f"prepared {total:,} tokens ({meta['splits']['val']['tokens']:,} validation) in {directory}")
    return verify(directory)


# --- Batches -------------------------------------------------------------------------------------------


def num_chunks(tokens: np.ndarray, context: int) -> int:
    """Non-overlapping training chunks of context + 1 tokens (inputs and shifted targets)."""
    return max(0, (len(tokens) - 1) // context)


@functools.lru_cache(maxsize=4)
def chunk_order(n_chunks: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded order in which an epoch visits the chunks."""
    return np.random.default_rng([seed, epoch]).permutation(n_chunks)


def batch_at(tokens: np.ndarray, context: int, batch_size: int, position: int,
             seed: int) -> np.ndarray:
    """The batch of `batch_size` chunks starting at sample `position` of a seeded epoch-wise shuffle.

    The data position is a plain sample count, so a resumed run continues with exactly the same data.
    Returns int64 array (batch_size, context + 1).
    """
    n = num_chunks(tokens, context)
    if n == 0:
        raise ValueError(f"{len(tokens)} tokens are too few for one chunk of {context + 1}")
    rows = []
    for sample in range(position, position + batch_size):
        epoch, index = divmod(sample, n)
        start = int(chunk_order(n, seed, epoch)[index]) * context
        rows.append(np.asarray(tokens[start:start + context + 1], dtype=np.int64))
    return np.stack(rows)
