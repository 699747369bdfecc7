"""Finish pip-compile's output into requirements/lock.txt: our header, no self-reference (the book extra
names gqa[models]), no machine paths. Usage: python requirements/finish_lock.py COMPILED LOCK"""

import re
import sys
from pathlib import Path

HEADER = """\
# The exact versions `make` installs (core, models, hf, book, dev and cluster extras), with their hashes, for
# Linux x86-64, CPython 3.11 and the CPU build of PyTorch (torch 2.13.0+cpu; its hash is the CPU wheel's).
# Made by `make lock` (pip-compile --generate-hashes over pyproject.toml); `make UNLOCKED=1 setup` resolves
# afresh instead. tests/test_packaging.py keeps it in agreement with pyproject.toml.
#
"""


def finish(compiled: str) -> str:
    text = re.sub(r"(# WARNING: pip install will require[^\n]*\n# Consider using[^\n]*\n)?"
                  r"gqa(\[[^\]]*\])? @ file:[^\n]*\n(    # via[^\n]*\n)?", "", compiled)
    text = re.sub(r"-c \S*installed\.txt", "-c (the environment make installed)", text)
    lines = [line for line in text.splitlines() if not line.startswith(("--extra-index-url", "--find-links",
                                                                         "--index-url"))]
    body = lines[next(i for i, line in enumerate(lines) if line and not line.startswith("#")):]
    return HEADER + "\n".join(body) + "\n"


if __name__ == "__main__":
    source, target = map(Path, sys.argv[1:3])
    target.write_text(finish(source.read_text()))
    print(f"wrote {target}")
