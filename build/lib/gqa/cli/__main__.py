"""`python -m gqa.cli ...` (used by torchrun for distributed training)."""

import sys

from gqa.cli import main

sys.exit(main())
