"""The tiled objective with its tiles on a Dask cluster: two rounds per evaluation, the sums made here.

Round 1 sends each tile's input pixels and receives its statistics; the
client adds them up in tile order (as the local ``TiledObjective`` does, so
the value is the same to float32 rounding) and sends the totals once to
every worker; round 2 sends each tile's pixels again with the totals and
receives the gradient on its input span, added here. The image-space terms
and the optimizer stay on the client. A task lost with its worker is
retried by the scheduler on another worker.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..core.evaluation.objective import WeightedLoss
from ..core.evaluation.tiled_objective import TiledObjective, Totals, add_statistics, make_tiled_objective
from ..core.evaluation.tiling import Tiles
from ..core.request.settings import Settings
from . import worker
from .connection import check_networks, connect, gather, wait_for, watched
from .targets import set_cluster_targets
from .traffic import Traffic


class ClusterObjective(TiledObjective):
    """``TiledObjective``'s contract, each tile's network passes run on the workers of ``client``;
    ``traffic`` counts the bytes per evaluation."""

    def __init__(self, local: TiledObjective, client, settings: Settings, checked: bool = False,
                 content: list | None = None):
        super().__init__(local.backend, local.losses, local.grid)
        self.client, self.traffic = client, Traffic()
        #: Each tile's content target, held on the workers (``set_cluster_targets``); None: no content term.
        self.content = content or [None] * len(self.runner.tiles)
        self.address = settings.scheduler or client.scheduler.address
        spec = worker.LevelSpec(settings.backend, settings.options_for(settings.backend), self.layers,
                                settings.threads, self.feature_terms, self.grid)
        with watched(client, self.address):
            if not checked:  # else the targets' work checked the workers' network
                check_networks(client, spec.network, worker.parameters_digest(local.backend))
            self._sent = (len(client.scheduler_info(n_workers=-1)["workers"]), spec)
            self.spec = client.scatter(spec, broadcast=True, hash=False)

    @functools.cached_property
    def setup_bytes(self) -> int:
        """Bytes the level's spec took to the workers, once each (pickled again only when a bench asks)."""
        workers, spec = self._sent
        return workers * _spec_bytes(spec)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        with watched(self.client, self.address):  # a lost scheduler: ClusterLost, the run's checkpoint kept
            return self._evaluate(x)

    def _evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        traffic = self.traffic
        futures = [self._submit(worker.statistics, x, index, "pixels") for index in range(len(self.content))]
        totals: list[Totals] = [{} for _ in self.feature_terms]
        for stats in gather(self.client, self.address, futures):  # in tile order: the local objective's sums
            traffic.receive("statistics", stats)
            add_statistics(totals, stats)
        total = self.feature_value(totals)
        workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
        shared = self.client.scatter(totals, broadcast=True, hash=False)
        traffic.send("totals", totals, copies=workers)
        futures = [self._submit(worker.gradient, x, index, "pixels", shared) for index in range(len(self.content))]
        wait_for(self.client, self.address, futures)
        grad = np.zeros_like(x)
        for tile, _ in reversed(self.runner.tiles):  # the local objective's order: the last tile first
            future = futures.pop()  # released once added: the scheduler drops its copy of the tile's pixels
            tile_grad = future.result()  # one tile's at a time here
            if tile_grad is not None:
                traffic.receive("gradients", tile_grad)
                rows, cols = tile.span
                grad[:, :, rows, cols] += tile_grad
            del tile_grad, future
        traffic.evaluations += 1
        return self.finish(total + self.add_image_terms(x, grad), grad)

    def _submit(self, task, x: np.ndarray, index: int, kind: str, *more):
        """Submit ``task`` for tile ``index`` with its span of ``x``, made as it is sent and not kept here (the
        scheduler keeps it while the task may be retried): the client holds no second image of spans."""
        rows, cols = self.runner.tiles[index][0].span
        piece = np.ascontiguousarray(x[:, :, rows, cols])
        self.traffic.send(kind, piece)
        return self.client.submit(task, self.spec, index, piece, self.content[index], *more, pure=False)


def _spec_bytes(spec: worker.LevelSpec) -> int:
    import cloudpickle  # as Dask sends it: the tiling's grid function is a closure
    return len(cloudpickle.dumps(spec, protocol=5))


def make_cluster_objective(backend, losses: Sequence[WeightedLoss], content: np.ndarray, style, tiles: Tiles,
                           settings: Settings, **images) -> ClusterObjective:
    """``make_tiled_objective``'s objective with its targets and evaluations on the cluster at
    ``settings.scheduler``: this process never runs the network on the scale. ``targets_traffic``
    counts the targets' bytes."""
    client = connect(settings.scheduler)  # before the targets' work: a missing cluster is said at once
    layers = sorted({layer for term in losses for layer in term.loss.layers})  # the objective's (Objective.layers)
    network = worker.Network.of(settings.backend, settings.options_for(settings.backend), layers, settings.threads)
    traffic, held = Traffic(), []

    def on_workers(*args) -> None:
        with watched(client, settings.scheduler):
            check_networks(client, network, worker.parameters_digest(backend))
            held.append(set_cluster_targets(client, settings.scheduler, network, *args, traffic=traffic))

    local = make_tiled_objective(backend, losses, content, style, tiles, set_targets=on_workers, **images)
    objective = ClusterObjective(local, client, settings, checked=True, content=held[0])
    objective.targets_traffic = traffic
    return objective
