"""What runs on a Dask worker: one tile's statistics or gradient, the network loaded once per worker process.

Worker-resident state (a module-level cache), not Dask actors: an actor
lives on one worker and dies with it, while plain tasks that find their
state in the worker's cache are retried by the scheduler on another worker
when one is lost, and that worker builds its state from the level's spec
(replicated on every worker) on first use. The network is kept across
levels (Caffe reshapes its input); the level's objective (losses with their
targets) is kept until the next level's spec arrives.
"""
from __future__ import annotations

import hashlib
import sys
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..core.errors import StylizeError, one_line
from ..core.evaluation.objective import WeightedLoss
from ..core.evaluation.tiled_objective import TiledObjective, TiledRunner, Totals, select_layers
from ..core.evaluation.tiling import Tile, TileGrid


class Network(NamedTuple):
    """What a worker loads: the backend by name with the client's options, the layers read, its threads."""

    backend: str
    options: tuple
    layers: tuple
    threads: int | None

    @classmethod
    def of(cls, backend: str, options: dict[str, Any], layers, threads: int | None) -> "Network":
        """The network a client's run loads, in a form two runs of the same network compare equal in."""
        return cls(backend, tuple(sorted(options.items())), tuple(layers), threads)


@dataclass
class LevelSpec:
    """All a worker needs for one level: the backend to build, the weighted feature terms (losses with their
    targets, but for the content terms': each tile's task brings its own), the tile grid; sent to every worker
    once per level."""

    backend: str
    options: dict[str, Any]
    layers: list[str]
    threads: int | None
    terms: list[WeightedLoss]
    grid: TileGrid
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def network(self) -> Network:
        return Network.of(self.backend, self.options, self.layers, self.threads)


#: This worker process's network (one: a new one replaces the old) and its level's objective (token, objective).
_NETWORKS: dict[str, Any] = {}
_LEVEL: list = [None, None]
#: Each loaded backend's ``parameters_digest``, made once (hashing VGG19's 548 MB takes a second or two).
_DIGESTS: "weakref.WeakKeyDictionary[Any, str | None]" = weakref.WeakKeyDictionary()


def version() -> str:
    """The stylize version this worker runs (the client refuses a worker whose differs).

    Read from the package this module is part of, imported before it: no import of the package's
    ``__init__`` (which reaches the core that reaches this module) is needed.
    """
    return sys.modules[__name__.partition(".")[0]].__version__


def parameters_digest(backend) -> str | None:
    """``N bytes of parameters, sha256 X`` of a loaded network (its layers' names, shapes and values), or
    None for a backend that does not show its parameters (a pycaffe ``net.params``): then not compared."""
    if backend not in _DIGESTS:
        params = getattr(getattr(backend, "net", None), "params", None)
        digest = None
        if params is not None:
            h, size = hashlib.sha256(), 0
            for name, blobs in params.items():
                for blob in blobs:
                    data = np.ascontiguousarray(blob.data)
                    h.update(f"{name}{data.shape}{data.dtype.str}".encode())
                    h.update(memoryview(data).cast("B"))
                    size += data.nbytes
            digest = f"{size} bytes of parameters, sha256 {h.hexdigest()[:16]}"
        _DIGESTS[backend] = digest
    return _DIGESTS[backend]


def _network(network: Network):
    key = repr(network)  # option values need not be hashable
    if key not in _NETWORKS:
        from ..core import plugins
        _NETWORKS.clear()  # one network per worker: a new one replaces the old
        cls = plugins.load("stylize.backends", network.backend)
        _NETWORKS[key] = cls(list(network.layers), threads=network.threads, **dict(network.options))
    return _NETWORKS[key]


def network_check(network: Network) -> tuple[str | None, str | None]:
    """Load ``network`` here (kept for the tiles' tasks): (what it loaded, ``parameters_digest``; None) or
    (None, the one-line error that refused it)."""
    try:
        return parameters_digest(_network(network)), None
    except StylizeError as e:
        return None, one_line(e)


def _objective(spec: LevelSpec) -> TiledObjective:
    if _LEVEL[0] != spec.token:
        _LEVEL[:] = [spec.token, TiledObjective(_network(spec.network), spec.terms, spec.grid)]
    return _LEVEL[1]


def _in_span(tile: Tile, pixels: np.ndarray) -> Tile:
    """``tile`` as a task sees it: its ``pixels`` are the tile's span alone, not the whole image."""
    return Tile(tile.core, (slice(0, pixels.shape[2]), slice(0, pixels.shape[3])))


def _tile_cores(network: Network, grid: TileGrid, layers: list[str], index: int, pixels: np.ndarray):
    """Tile ``index`` of ``grid`` (``pixels``: its span) through the network: its core features (copied out of
    the backend) and its windows."""
    runner = TiledRunner(_network(network), grid, layers)
    tile, windows = runner.tiles[index]
    cores = runner.forward(pixels, _in_span(tile, pixels), windows, backward=False)
    return {layer: np.array(core) for layer, core in cores.items()}, windows


def content_features(network: Network, grid: TileGrid, layers: list[str], index: int,
                     pixels: np.ndarray) -> dict[str, np.ndarray]:
    """A scale's targets, content: tile ``index``'s core features of the content image's ``layers``."""
    return _tile_cores(network, grid, layers, index, pixels)[0]


def style_statistics(network: Network, grid: TileGrid, terms: list[WeightedLoss], image: int, index: int,
                     pixels: np.ndarray) -> list[Totals]:
    """A scale's targets, style: each style term's ``target_statistics`` of tile ``index`` of style image
    ``image`` (the client adds them up in tile order, as ``core.evaluation.tiled_objective.style_statistics`` does)."""
    layers = sorted({layer for t in terms for layer in t.loss.layers})
    cores, windows = _tile_cores(network, grid, layers, index, pixels)
    return [term.loss.target_statistics(*select_layers(cores, windows, term.loss.layers), image) for term in terms]


class TileTarget:
    """A content target known on one tile's core only (``content_features`` of that tile): ``window.crop`` of it
    gives that core, as of the whole image's target, so a worker holds its tiles' targets, never the whole."""

    def __init__(self, window, core: np.ndarray):
        self.window, self.core = window, core

    def __getitem__(self, key) -> np.ndarray:
        if tuple(key[-2:]) != (self.window.rows, self.window.cols):
            raise IndexError(f"this worker holds the content target of core {self.window} only, not of {key}")
        return self.core


def _forward(objective: TiledObjective, index: int, pixels: np.ndarray, backward: bool,
             content: dict[str, np.ndarray] | None):
    tile, windows = objective.runner.tiles[index]
    for term in objective.feature_terms:  # the content terms' targets: this tile's, made on a worker (None: in the spec)
        if term.loss.role == "content" and content is not None:
            term.loss.targets = {layer: TileTarget(windows[layer].window, content[layer]) for layer in term.loss.layers}
    return objective.runner.forward(pixels, _in_span(tile, pixels), windows, backward=backward), windows


def statistics(spec: LevelSpec, index: int, pixels: np.ndarray, content: dict[str, np.ndarray] | None) -> list[Totals]:
    """Round 1: tile ``index``'s statistics, one mapping per feature term (``pixels``: its span of the input;
    ``content``: its content target, ``content_features``), in the losses' own precision (float32 Gram sums):
    the client adds them in float64 as the local objective does."""
    objective = _objective(spec)
    cores, windows = _forward(objective, index, pixels, False, content)
    return objective.tile_statistics(cores, windows)


def gradient(spec: LevelSpec, index: int, pixels: np.ndarray, content: dict[str, np.ndarray] | None,
             totals: list[Totals]) -> np.ndarray | None:
    """Round 2: the gradient of the whole image's feature terms with respect to tile ``index``'s input pixels,
    given the whole image's statistics ``totals``; None when no term reads this tile."""
    objective = _objective(spec)
    cores, windows = _forward(objective, index, pixels, True, content)
    grads = objective.tile_gradients(cores, windows, totals)
    return np.array(objective.backend.backward(grads), np.float32) if grads else None
