"""The client's link to a Dask scheduler: one per process, its workers checked, its loss said in one line.

A worker is refused by name when its stylize version or its network (the
parameters it loaded from the same options: their size and sha256) differs
from this client's: a cluster of mixed networks would give an image no
single machine makes. A scheduler lost mid-run stops the run with
``ClusterLost`` (resumable: the Job writes its checkpoint, and ``--resume``
continues on another cluster, since the scheduler is not fingerprinted).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import time
from typing import Iterator, Sequence

from ..core.errors import StylizeError, one_line
from . import worker

#: Seconds to wait for the scheduler and for a first worker (and, once lost, for it to come back).
CONNECT_TIMEOUT = 30
#: Seconds a scale's tiles wait on a cluster without any worker before the run stops (ClusterLost).
NO_WORKER_TIMEOUT = 60
_CLIENTS: dict[str, object] = {}


class ClusterLost(StylizeError):
    """The scheduler cannot be reached (or went away mid-run): the run stops, its checkpoint kept."""

    #: The run's machines failed, not its input: the Job checkpoints the iteration reached.
    resumable = True


def connect(address: str):
    """The ``distributed.Client`` of the scheduler at ``address`` (one per process), its workers' versions
    checked; ClusterLost when there is none, or the one this process had is lost."""
    client = _CLIENTS.get(address)
    if client is not None and client.status != "running":
        raise lost(address, "the connection dropped")
    if client is None:
        from distributed import Client
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterLost(f"--scheduler {address}: no scheduler with a worker there ({str(e).splitlines()[0]}); "
                              f"start one with `dask scheduler` and workers with `dask worker {address} "
                              "--nthreads 1`") from None
        atexit.register(client.close)
        _CLIENTS[address] = client
    with watched(client, address):
        check_versions(client)
    return client


def disconnect(address: str) -> None:
    """Close this process's client of ``address``, if it has one; quietly where its scheduler is gone
    (Dask logs the cancelled reconnection with a traceback)."""
    client = _CLIENTS.pop(address, None)
    if client is None:
        return
    atexit.unregister(client.close)
    quiet = logging.getLogger("distributed.client")
    level, quiet.level = quiet.level, logging.CRITICAL + 1
    try:
        client.close()
    finally:
        quiet.setLevel(level)


def lost(address: str, why: str) -> ClusterLost:
    """The one-line error of a scheduler gone mid-run (this process's client of it closed)."""
    disconnect(address)
    return ClusterLost(f"the Dask scheduler at {address} was lost ({why}); start a scheduler and workers again "
                       "and continue with --resume (--scheduler may name the new one)")


@contextlib.contextmanager
def watched(client, address: str) -> Iterator[None]:
    """Turn what the client raises when its scheduler goes (cancelled futures, closed or refused
    connections) into ClusterLost; a task's own error, with the scheduler there, passes through."""
    from distributed.comm import CommClosedError
    if client.status != "running":
        raise lost(address, "the connection dropped")
    try:
        yield
    except (concurrent.futures.CancelledError, CommClosedError, OSError, TimeoutError) as e:
        if client.status == "running" and not isinstance(e, CommClosedError):
            raise
        raise lost(address, one_line(e)) from None


def gather(client, address: str, futures: Sequence) -> list:
    """The futures' results, in order (``wait_for`` them first)."""
    wait_for(client, address, futures)
    return client.gather(futures)


def wait_for(client, address: str, futures: Sequence) -> None:
    """Return when every future is done, their results left on the workers; a task's error raised here. A
    lost worker's tasks are retried on another as long as one is left; ClusterLost when every worker went
    and the scale's spec with them (Dask cancels the tasks that need it), or when the cluster has had no
    worker at all for ``NO_WORKER_TIMEOUT`` seconds (Dask would wait for one forever)."""
    from distributed import wait
    alone_since = None
    while True:
        try:
            with client.as_current():  # wait() asks for the default client, which this one is not
                wait(futures, timeout=min(5.0, NO_WORKER_TIMEOUT))
            client.gather([f for f in futures if f.status in ("error", "cancelled")])  # raises, as gather would
            return
        except TimeoutError:
            if client.status != "running":
                raise
        except concurrent.futures.CancelledError:
            if client.status != "running":
                raise  # the scheduler went: ``watched`` says so
            raise ClusterLost(f"every worker of the Dask cluster at {address} was lost, and this scale's spec with "
                              f"them; start workers (`dask worker {address} --nthreads 1`) and continue with "
                              "--resume") from None
        if client.scheduler_info(n_workers=-1)["workers"]:
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
        elif time.monotonic() - alone_since >= NO_WORKER_TIMEOUT:
            raise ClusterLost(f"the Dask cluster at {address} has had no worker for {NO_WORKER_TIMEOUT} s; start "
                              f"workers (`dask worker {address} --nthreads 1`) and continue with --resume")


def check_versions(client) -> None:
    """Refuse the cluster if any worker runs a stylize version other than this process's."""
    mine = worker.version()
    others = {address: v for address, v in client.run(worker.version).items() if v != mine}
    if others:
        named = ", ".join(f"{address} runs stylize {v}" for address, v in sorted(others.items()))
        raise StylizeError(f"worker {named}; this client runs {mine}: install the same stylize on every worker")


def check_networks(client, network: worker.Network, mine: str | None) -> None:
    """Load ``network`` on every worker (once per worker process: its tiles' tasks find it) and refuse,
    by name, a worker that cannot or whose parameters differ from ``mine`` (``worker.parameters_digest``)."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    futures = [client.submit(worker.network_check, network, workers=[address], allow_other_workers=False, pure=False)
               for address in workers]
    refused = []
    for address, (theirs, error) in zip(workers, gather(client, client.scheduler.address, futures)):
        if error is not None:
            refused.append(f"worker {address} cannot load it ({error})")
        elif mine is not None and theirs != mine:
            refused.append(f"worker {address} loaded {theirs}")
    if refused:
        raise StylizeError(f"the network differs on the cluster: backend {network.backend!r} with "
                           f"{dict(network.options)} is {mine} here, but {'; '.join(refused)}: give every worker "
                           "the same network files at the same paths")
