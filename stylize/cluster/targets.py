"""A scale's targets made on the cluster's workers, so that the client never runs the network on a spread scale.

The same sums as ``core.evaluation.tiled_objective.set_tiled_targets``: the content
target assembled from each tile's core features, each style term's
statistics added up in tile order (float64, as locally); the tiles' pixels
go out, their features and statistics come back.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.evaluation.objective import WeightedLoss
from ..core.evaluation.tiled_objective import TiledRunner, Totals, add_statistics
from ..core.evaluation.tiling import Tiles
from . import worker
from .connection import gather, wait_for
from .traffic import Traffic


def _pieces(backend, image: np.ndarray, runner: TiledRunner) -> list[np.ndarray]:
    x = backend.preprocess(image)
    return [np.ascontiguousarray(x[:, :, rows, cols]) for rows, cols in (tile.span for tile, _ in runner.tiles)]


def set_cluster_targets(client, address: str, network: worker.Network, backend, losses: Sequence[WeightedLoss],
                        content: np.ndarray, styles: Sequence[np.ndarray], tiles: Tiles, traffic: Traffic) -> list | None:
    """Give the style terms their targets, each tile's network pass on a worker; the content terms' targets
    stay there: returned as one future per tile (its core features, held by the worker that made them and
    made again from the tile's pixels by the scheduler if that worker is lost), None without a content term.
    The client neither holds nor ships them (at 8192 px, conv4_2's are 1.5 GB)."""
    content_terms = [t for t in losses if t.loss.role == "content"]
    held = None
    if content_terms:
        layers = sorted({layer for t in content_terms for layer in t.loss.layers})
        runner = TiledRunner(backend, tiles.grid(content.shape), layers)  # the windows only: no network here
        pieces = _pieces(backend, content, runner)
        traffic.send("targets: pixels", pieces)
        held = [client.submit(worker.content_features, network, runner.grid, layers, index, piece, pure=False)
                for index, piece in enumerate(pieces)]
        wait_for(client, address, held)
    style_terms = [t for t in losses if t.loss.role == "style"]
    if style_terms:
        layers = sorted({layer for t in style_terms for layer in t.loss.layers})
        shared = client.scatter(style_terms, broadcast=True, hash=False)
        per_image = []
        for image_index, image in enumerate(styles):
            runner = TiledRunner(backend, tiles.grid(image.shape), layers)
            pieces = _pieces(backend, image, runner)
            traffic.send("targets: pixels", pieces)
            futures = [client.submit(worker.style_statistics, network, runner.grid, shared, image_index, index, piece,
                                     pure=False) for index, piece in enumerate(pieces)]
            totals: list[Totals] = [{} for _ in style_terms]
            for stats in gather(client, address, futures):  # in tile order: the local sums
                traffic.receive("targets: statistics", stats)
                add_statistics(totals, stats)
            per_image.append(totals)
        for position, term in enumerate(style_terms):
            term.loss.set_target_statistics([sums[position] for sums in per_image])
    return held
