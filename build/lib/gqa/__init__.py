"""Cost-optimal grouped-query attention: a reproducible companion to Chen et al., EMNLP 2025.

Importing `gqa` is cheap (no torch); modules that need torch import it themselves.
"""

__version__ = "0.1.0"
