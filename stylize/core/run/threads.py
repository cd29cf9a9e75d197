"""BLAS threads during a run: the network's BLAS on every core, NumPy's and SciPy's on one.

A process running stylize holds three OpenBLAS copies: the backend's (Caffe
links ``scipy_openblas32``), NumPy's and SciPy's, each with its own pool of
one thread per core. A pool's threads keep spinning for a while after each
call, so when the losses' NumPy products follow a Caffe pass on two cores,
the pools take the cores from each other: a 128 px VGG19 evaluation took
0.86 s inside a run against 0.31 s alone. NumPy's and SciPy's work in a run
(Gram products of at most a few hundred rows, L-BFGS's vector updates) gains
little from threads, while Caffe's convolutions are most of the time, so
NumPy's and SciPy's pools are held at one thread and the network's BLAS
gets the cores (or ``--threads``). Measured in bench/README.md ("Thread pools").
"""
from __future__ import annotations

import contextlib
from pathlib import Path

#: Folders of the BLAS libraries NumPy's and SciPy's wheels ship (``numpy.libs``, older ``numpy/.libs``).
_OWN_BLAS_FOLDERS = ("numpy.libs", "scipy.libs")


def _numerics_blas(controller) -> list[str]:
    """Paths of the BLAS libraries loaded by NumPy and SciPy themselves (not the backend's)."""
    paths = []
    for library in controller.lib_controllers:
        parts = Path(library.filepath).parts
        if any(folder in parts for folder in _OWN_BLAS_FOLDERS) or \
                any(a in ("numpy", "scipy") and b == ".libs" for a, b in zip(parts, parts[1:])):
            paths.append(library.filepath)
    return paths


@contextlib.contextmanager
def run_threads(threads: int | None):
    """Inside: NumPy's and SciPy's BLAS on one thread; every other BLAS on ``threads`` (None: as it was).

    Enter it after the backend loaded its BLAS, so that the limit reaches it.
    """
    from threadpoolctl import ThreadpoolController
    controller = ThreadpoolController()
    own = _numerics_blas(controller)
    with contextlib.ExitStack() as stack:
        if threads is not None:
            stack.enter_context(controller.select(user_api="blas").limit(limits=threads))
        if own:
            stack.enter_context(controller.select(filepath=own).limit(limits=1))
        yield
