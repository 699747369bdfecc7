"""The notebooks' first cell as one call: which profile a chapter runs in a hosted runtime (Colab, Binder).

Every notebook opens with a cell (written by `gqa book --sync-launch`, see `launch`) that imports
`hosted_profile` and sets HOSTED_PROFILE from it; the cell after the parameters then loads that profile's
parameters (`launch.hosted_parameters`). In Colab nothing is installed, so the cell first clones the
repository into CLONE and imports this module from the clone's booktools/; that is why this module uses
the standard library only, and why its import must work before the companion is installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HOSTED_ENV = "GQA_HOSTED_PROFILE"  # set to "ci" by binder/start; never seen by a build (book.execute_notebook)
HOSTED_NAME = "ci"  # the profile a hosted runtime runs: minutes on a shared CPU
CLONE = "~/gqa-companion"  # where the first cell clones the repository in Colab
CLONE_ENV = "GQA_HOSTED_CLONE"  # set by the first cell, to CLONE, when it has just imported this module from there
MARKER = ".gqa-hosted-install"  # written into the clone once installed: a restarted kernel is still hosted


def hosted_profile(repository: str, *, run: Callable[..., object] = subprocess.run) -> str | None:
    """The profile this kernel should run, installing the companion first where it is missing.

    - In a checkout, or under `gqa book` (GQA_HOSTED_PROFILE unset): None, and the notebook keeps the
      parameters it was given, wherever the checkout lives (~/gqa-companion included).
    - In Binder (binder/start exports GQA_HOSTED_PROFILE=ci): that profile.
    - In Colab, where the first cell has cloned `repository` into CLONE and imported this module from there
      (saying so in GQA_HOSTED_CLONE): "ci", after installing the clone, editable, with its book extra and
      the book tools, if gqa does not import yet, and marking the clone as a hosted install. Run again, or
      in a restarted kernel (the clone now installed and marked), it installs nothing and still says "ci".
    """
    here = Path(__file__).resolve().parents[2]  # <repository>/booktools/gqa_book/hosted.py
    marker = here / MARKER
    just_cloned = os.environ.get(CLONE_ENV) and Path(os.environ[CLONE_ENV]).resolve() == here
    if just_cloned and not marker.exists():
        if importlib.util.find_spec("gqa") is None:
            print(f"installing the companion from {repository or here} (a few minutes, once per runtime)")
            run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{here}[book]", "-e", f"{here}/booktools"],
                check=True)
            sys.path[:0] = [str(here), str(here / "booktools")]  # new processes see the install; this kernel not
        marker.write_text(f"installed by the notebooks' first cell from {repository}\n")
    if marker.exists():
        return HOSTED_NAME
    return os.environ.get(HOSTED_ENV) or None
