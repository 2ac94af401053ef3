"""mlx_instruct: the stage code of the MLX instruction-tuning study.

Importing the package loads an optimised BLAS on Linux before anything imports MLX.
"""

from mlx_instruct.blas import load_optimised_blas

load_optimised_blas()

__version__ = "0.1.0"
