"""`--precision bf16`: Caffe's convolution GEMMs on the CPU's bfloat16 matrix instructions.

Caffe runs its convolutions as im2col + ``scipy_cblas_sgemm`` (OpenBLAS,
float32; the OpenBLAS it links has no bf16 GEMM). ``sgemm_bf16.c``, built by
``scripts/build_bf16_shim.py`` into the virtualenv's ``lib``, defines that
symbol: ``preload`` loads it with RTLD_GLOBAL before pycaffe is imported, so
_caffe.so's undefined symbol binds to it. Off (the default), every call goes
on unchanged to OpenBLAS (bit-identical results); on, products of at least
``MIN_FLOPS`` run through oneDNN in bf16 with float32 accumulation (AMX or
AVX512-BF16). Measured in bench/precision.py (README "Performance").
"""
from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path

from stylize.core import UsageError

#: The library scripts/build_bf16_shim.py builds, beside oneDNN's libdnnl.
LIBRARY = Path(sys.prefix) / "lib" / "libstylize_sgemm_bf16.so"
#: Products smaller than this (2 M N K) stay in OpenBLAS: rounding and packing cost more than they save.
MIN_FLOPS = float(1 << 22)
#: ``--precision auto`` runs an evaluation in bf16 when its input has at least this many pixels (and bf16
#: can run here): bench/precision.py measured bf16 1.45x faster per evaluation at 512 px on two threads
#: and 0.92x at 256 px, whose products are too small to split over two threads.
AUTO_MIN_PIXELS = 1 << 17
#: What ``auto`` chooses for large inputs where bf16 can run: "bf16", or "fp32" where exact float32
#: arithmetic is wanted for every run of the process (the test suite's finite differences pin it).
AUTO = "bf16"
#: CPU flags (/proc/cpuinfo) of bf16 matrix instructions: AVX512-BF16 (AMD EPYC, Xeon) or AMX.
CPU_FLAGS = ("avx512_bf16", "amx_bf16")

_shim: ctypes.CDLL | None = None
_problem: str | None = None  # why bf16 cannot run here; None once loaded and interposed


def openblas_library() -> Path | None:
    """Caffe's OpenBLAS, found without importing scipy_openblas32 (its import loads the library
    RTLD_GLOBAL, which would put it ahead of the shim)."""
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), "lib", "libscipy_openblas.so")
    return path if path.is_file() else None


def cpu_has_bf16() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in CPU_FLAGS)


def preload() -> None:
    """Load the shim ahead of pycaffe when it is built (called by ``import_caffe`` before ``import caffe``)."""
    global _shim, _problem
    if _shim is not None or _problem is not None:
        return
    if "caffe" in sys.modules:
        _problem = "pycaffe was imported before stylize could load its bf16 GEMM library"
        return
    blas = openblas_library()
    if not LIBRARY.is_file() or blas is None:
        _problem = (f"the bf16 GEMM library is not built ({LIBRARY}); "
                    "run `make setup` (scripts/build_bf16_shim.py)")
        return
    try:
        shim = ctypes.CDLL(str(LIBRARY), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        _problem = f"the bf16 GEMM library does not load ({e}); run `make setup` again"
        return
    error = ctypes.create_string_buffer(512)
    if shim.stylize_bf16_init(str(blas).encode(), error, len(error)) != 0:
        _problem = f"the bf16 GEMM library cannot reach OpenBLAS ({error.value.decode()})"
        return
    if not shim.stylize_bf16_interposed():
        _problem = "Caffe's OpenBLAS was loaded ahead of the bf16 GEMM library (scipy_openblas32 imported first?)"
        return
    shim.stylize_bf16_set.argtypes = [ctypes.c_int, ctypes.c_double]
    for name in ("stylize_bf16_calls", "stylize_bf16_bf16_calls"):
        getattr(shim, name).restype = ctypes.c_longlong
    shim.stylize_bf16_seconds.restype = ctypes.c_double
    _shim = shim


def problem() -> str | None:
    """Why ``--precision bf16`` cannot run in this process, or None when it can."""
    if not cpu_has_bf16():
        return "this CPU has no bfloat16 matrix instructions (AVX512_BF16 or AMX)"
    preload()
    return _problem


def check(precision: str) -> None:
    """Refuse bf16 where it cannot run, in one line."""
    reason = problem() if precision == "bf16" else None
    if reason:
        raise UsageError(f"--precision bf16: {reason}; use --precision fp32")


def resolve(precision: str, pixels: int) -> str:
    """The arithmetic of one evaluation whose input has ``pixels`` pixels: fp32 or bf16 as given;
    auto: bf16 for large inputs where it can run (``AUTO_MIN_PIXELS``), fp32 otherwise."""
    if precision != "auto":
        return precision
    return "bf16" if AUTO == "bf16" and pixels >= AUTO_MIN_PIXELS and _runs_here() else "fp32"


def _runs_here() -> bool:
    global _auto
    if _auto is None:
        _auto = problem() is None
    return _auto


_auto: bool | None = None  # whether bf16 can run in this process, once asked


def use(precision: str) -> None:
    """This thread's following Caffe GEMMs in ``precision`` (``check`` it first); fp32 needs no library."""
    if _shim is not None:
        _shim.stylize_bf16_set(int(precision == "bf16"), MIN_FLOPS)


def counts() -> dict[str, float]:
    """sgemm calls that reached the shim, those run in bf16, and seconds inside sgemm (benchmarks, tests)."""
    if _shim is None:
        return {"calls": 0, "bf16_calls": 0, "seconds": 0.0}
    return {"calls": _shim.stylize_bf16_calls(), "bf16_calls": _shim.stylize_bf16_bf16_calls(),
            "seconds": _shim.stylize_bf16_seconds()}


def library() -> ctypes.CDLL | None:
    """The loaded shim (its ``scipy_cblas_sgemm`` is what Caffe calls), or None."""
    preload()
    return _shim
