"""During a run, NumPy's and SciPy's BLAS pools hold one thread; the network's keeps the cores (or --threads)."""
from __future__ import annotations

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, as the L-BFGS optimizer does)
from threadpoolctl import threadpool_info

from stylize import Job, events


def pools() -> dict[str, int]:
    def owner(path: str) -> str:
        return "numpy" if "numpy" in path and "scipy_openblas32" not in path else \
            "scipy" if "scipy.libs" in path else "network"
    return {owner(info["filepath"]): info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}


def test_numpy_and_scipy_run_on_one_thread_and_the_network_on_its_own(tiny_net):
    prototxt, weights = tiny_net
    tiny = dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"], length=24,
                iterations=2, scales=1, options={"caffe": {"prototxt": prototxt, "weights": weights}})
    rng = np.random.default_rng(0)
    content, style = (rng.random((24, 24, 3)).astype(np.float32) for _ in range(2))
    for threads in (None, 1):
        job = Job(content, style, threads=threads, **tiny)
        job.estimate  # Caffe's BLAS is loaded before the pools are read
        before, seen = pools(), []
        assert set(before) == {"numpy", "scipy", "network"}
        job.run(lambda event: seen.append(pools()) if isinstance(event, events.Step) else None)
        expected = {"numpy": 1, "scipy": 1, "network": before["network"] if threads is None else threads}
        assert seen and all(during == expected for during in seen), (threads, seen)
        assert pools() == before  # restored after the run
