"""Instruction data: read sources, deduplicate, split, template, tokenize, assess quality.

Kept import-light on purpose: `mlx_instruct.data.tasks` (the verifiable task generator) lives
under this package, so importing it must not pull in tokenizers, MLX or pandas.
"""

from mlx_instruct.data.common import DataError, normalize_text

__all__ = ["DataError", "normalize_text"]
