"""The Dask cluster as core's ``Remote``: its workers' memory limits for the plan, its objective for the levels."""
from __future__ import annotations

from ..core.evaluation.remote import Machines
from ..core.request.settings import Settings
from .connection import connect, watched
from .objective import ClusterObjective, make_cluster_objective


class DaskRemote:
    """The workers of the scheduler at ``settings.scheduler``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def machines(self) -> Machines:
        """Each worker's memory for tiles: its limit as Dask reports it (``dask worker --memory-limit``; 0:
        none) times the share at which Dask pauses a worker (``distributed.worker.memory.pause``, 0.8): a
        paused worker runs no tile, and the run would wait for it."""
        import dask.config
        address = self.settings.scheduler
        client = connect(address)
        with watched(client, address):
            workers = client.scheduler_info(n_workers=-1)["workers"]
        share = dask.config.get("distributed.worker.memory.pause", 0.8) or 1.0
        return Machines(address, tuple(int(w["memory_limit"] * share) if w.get("memory_limit") else None
                                       for _, w in sorted(workers.items())))

    def objective(self, backend, losses, content, style, tiles, **images) -> ClusterObjective:
        return make_cluster_objective(backend, losses, content, style, tiles, self.settings, **images)
