import sys
from pathlib import Path

import pytest

CORPUS_TEXT = [
    "def add(a, b):\n    return a + b\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "for i in range(10):\n    print(i * i)\n",
    "import os\nprint(os.path.join('a', 'b'))\n",
]


@pytest.fixture
def data_cache(tmp_path, monkeypatch):
    """A private token cache for the test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GQA_CACHE", str(cache))
    return cache


@pytest.fixture
def small_corpus(tmp_path):
    """120 small Python-like documents in files: a corpus spec."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(120):
        body = CORPUS_TEXT[i % len(CORPUS_TEXT)].replace("a", "a" * (1 + i % 3))
        (folder / f"doc{i:03d}.py").write_text(f"# document {i}\n{body * (1 + i % 5)}")
    return f"files:{folder}/*.py"


@pytest.fixture
def python():
    return sys.executable


ROOT = Path(__file__).resolve().parents[1]


# What only a checkout of the repository has: the notebooks, the book, its machinery (booktools/) and the
# committed run stores. In an unpacked sdist (the library, its tests and the paper's tables) the tests that
# read them are skipped, each with this reason, and tests/book/ (which imports gqa_book) is not collected.
IN_CHECKOUT = all((ROOT / name).is_dir() for name in ("notebooks", "book", "booktools", "data/runs"))
NOT_A_CHECKOUT = ("needs a checkout of the repository (notebooks/, book/, booktools/, data/runs/): "
                  "an unpacked sdist carries the library, its tests and the paper's tables only")
collect_ignore_glob = [] if IN_CHECKOUT else ["book/*"]


def pytest_collection_modifyitems(config, items):
    if IN_CHECKOUT:
        return
    skip = pytest.mark.skip(reason=NOT_A_CHECKOUT)
    for item in items:
        if item.get_closest_marker("checkout"):
            item.add_marker(skip)
