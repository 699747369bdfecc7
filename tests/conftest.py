import os
import sys
from pathlib import Path

import pytest

# pytest-xdist workers share the machine's cores: each worker (and every notebook kernel or subprocess it
# starts, which inherit the environment) gets its share of the cores as torch's thread count, not all of them.
# On two cores with two workers, two threads each made OpenMP spin against the other worker and tripled the
# time of the training and measuring tests. A value already set by the user wins.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))

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


# `make test` runs `pytest -n 2 --dist loadfile`: a file's tests run on one worker, so its module fixtures are
# built once and every build of the ci book (tests/book/test_book.py) happens on one worker, one at a time. The
# files below hold long tests that share nothing: each of their tests is scheduled on its own, so a free worker
# takes it. (pytest-xdist's loadgroup cannot express this under pytest 9.2, which ignores the group suffix
# xdist writes into each node id.)
SCHEDULED_ONE_BY_ONE = ("tests/book/test_prose_grid.py", "tests/book/test_recipes.py")


class _Scheduling:
    """Registered only where pytest-xdist is (a run with -p no:xdist would reject the unknown hook)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") != "loadfile":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class FileUnlessIndependent(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                return nodeid if path in SCHEDULED_ONE_BY_ONE else path

        return FileUnlessIndependent(config, log)


def pytest_configure(config):
    if hasattr(config.hook, "pytest_xdist_make_scheduler"):
        config.pluginmanager.register(_Scheduling(), "gqa-test-scheduling")


def pytest_collection_modifyitems(config, items):
    if IN_CHECKOUT:
        return
    skip = pytest.mark.skip(reason=NOT_A_CHECKOUT)
    for item in items:
        if item.get_closest_marker("checkout"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def grid():
    """The readings grid of data/paper/readings.yaml."""
    from gqa import readings

    return readings.load_grid()


@pytest.fixture(scope="session")
def report(grid):
    """Every reading evaluated, with 12 bootstrap resamples, not cached on disk (shared by the readings tests)."""
    from gqa import readings

    return readings.evaluate(grid, resamples=12, cache=False)

