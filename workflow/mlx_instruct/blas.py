"""Load an optimised BLAS before MLX on Linux CPUs.

`mlx[cpu]` wheels for Linux link the reference BLAS (~7.5 GFLOP/s on a 2-core x86 CPU).
Loading OpenBLAS into the global symbol namespace *before* `import mlx` makes MLX's GEMMs
resolve to it (~30x faster). This module must not import mlx itself.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from pathlib import Path

CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)
ENV_PATH = "MLX_INSTRUCT_BLAS"  # explicit path to a BLAS shared library
ENV_DISABLE = "MLX_INSTRUCT_NO_BLAS"  # "1" keeps MLX's bundled reference BLAS (benchmarks)
ENV_THREADS = "MLX_INSTRUCT_BLAS_THREADS"  # BLAS threads at load (default 1: reproducible)
ENV_CORETYPE = "OPENBLAS_CORETYPE"  # OpenBLAS's own kernel override, read when it loads
# x86 kernels every AVX2+FMA CPU can run; Zen CPUs use them already (docs/study.md).
PORTABLE_CORE = "Haswell"
FIX = (
    "Install OpenBLAS (Debian/Ubuntu: `sudo apt-get install libopenblas0-pthread`; "
    "Fedora: `sudo dnf install openblas-threads`) or point MLX_INSTRUCT_BLAS at a BLAS .so"
)

loaded_blas: str | None = None


def find_blas() -> str | None:
    """The first optimised BLAS on this machine, or None."""
    explicit = os.environ.get(ENV_PATH)
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"{ENV_PATH}={explicit}: no such file")
        return explicit
    return next((path for path in CANDIDATES if Path(path).is_file()), None)


def load_optimised_blas() -> str | None:
    """Load OpenBLAS globally when MLX would otherwise use its reference BLAS.

    Returns the loaded path. No-op on macOS (Accelerate), when disabled, or when mlx was
    already imported (too late to take effect: warn instead).
    """
    global loaded_blas
    if loaded_blas or sys.platform != "linux" or os.environ.get(ENV_DISABLE) == "1":
        return loaded_blas
    path = find_blas()
    if path is None:
        warnings.warn(
            "No optimised BLAS found: MLX will use its reference BLAS on this Linux CPU, "
            f"about 30x slower for training and evaluation. {FIX}.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    if "mlx.core" in sys.modules:
        warnings.warn(
            "mlx was imported before mlx_instruct, so OpenBLAS cannot take effect in this "
            "process; import mlx_instruct first.",
            RuntimeWarning,
            stacklevel=2,
        )
    pin_kernels()
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    loaded_blas = path
    set_threads(int(os.environ.get(ENV_THREADS, "1")))
    return path


def pin_kernels() -> str | None:
    """Choose OpenBLAS's Haswell kernels on any x86 CPU with AVX2 and FMA (unless the user
    set OPENBLAS_CORETYPE); returns the kernel set chosen, or None.

    Why: OpenBLAS picks its GEMM kernels by CPU at load (Zen/Haswell, SkylakeX with
    AVX-512, Sandybridge, ...) and each sums in its own order, so float32 logits differ in
    their last bits between CPUs and a greedy answer near a tie can flip. One kernel set for
    all such CPUs takes the CPU model out of the numerics (one thread takes the thread
    count out: `set_threads` at load).
    """
    if os.environ.get(ENV_CORETYPE):
        return os.environ[ENV_CORETYPE]
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    first = next((line for line in flags.splitlines() if line.startswith("flags")), "")
    if {"avx2", "fma"} <= set(first.split()):
        os.environ[ENV_CORETYPE] = PORTABLE_CORE
        return PORTABLE_CORE
    return None


def describe() -> dict[str, str | int | None]:
    """The BLAS in use (path, OpenBLAS kernel set and thread count) for logs/provenance."""
    info: dict[str, str | int | None] = {"path": loaded_blas, "core": None, "threads": None}
    if not loaded_blas:
        return info
    lib = ctypes.CDLL(loaded_blas)
    for key, name, restype in (
        ("core", "openblas_get_corename", ctypes.c_char_p),
        ("threads", "openblas_get_num_threads", ctypes.c_int),
    ):
        function = getattr(lib, name, None)
        if function is not None:
            function.restype = restype
            value = function()
            info[key] = value.decode() if isinstance(value, bytes) else value
    return info


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_threads(count: int) -> bool:
    """Set OpenBLAS's thread count now (True when the loaded BLAS has the call).

    Why: OpenBLAS's float32 GEMM results depend on its thread count (1 vs 2 or more
    threads differ in the last bits), so `load_optimised_blas` sets MLX_INSTRUCT_BLAS_THREADS
    (default 1) whatever OPENBLAS_NUM_THREADS says; a step that only measures speed and
    must use the whole machine (the efficiency suite, measured alone) resets it here.
    """
    if not loaded_blas:
        return False
    try:
        function = ctypes.CDLL(loaded_blas).openblas_set_num_threads
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_int]
    function(max(1, int(count)))
    return True
