"""Room in the work folder for ``stylize serve``: the oldest unneeded uploads and jobs pruned before they fill it.

``Storage`` counts and deletes; this decides what may go (ended jobs, results
no record lists, uploads no queued or running job reads) and refuses an
upload (507) when what must stay is over the limit.
"""
from __future__ import annotations

import contextlib
import logging

from .uploads import label as _label
from .work import Refused

log = logging.getLogger(__name__)


class Room:
    """Pruning of ``WebApp`` (a mixin: it reads ``storage``, ``queue``)."""

    def prune(self, need: int, keep: set[str] = frozenset()) -> list:
        """Delete the oldest uploads and ended jobs no queued or running job needs (nor ``keep``, upload ids)
        until ``need`` more bytes fit."""
        deleted = self.storage.prune(need, self._ended(), self.queue.needed_uploads() | keep, self._forget)
        for item in deleted:
            log.info("work folder over its limit: deleted %s %s (%d bytes)", item.kind, item.id, item.bytes)
        return deleted

    def _make_room(self, need: int, keep: set[str] = frozenset()) -> None:
        self.prune(need, keep)
        if self.storage.usage() + need > self.storage.limit:
            raise Refused(507, f"the work folder is full: {self.storage.limit / 2**20:,.0f} MiB allowed "
                               "(stylize serve --max-storage), all of it held by queued or running jobs' "
                               "images; wait for them to end or delete some")

    def _ended(self) -> list[str]:
        """Jobs that may be deleted: ended ones, and results on disk of jobs no record lists."""
        known = {record.id for record in self.queue.list()}
        orphans = [path.stem for path in self.work.results.glob("*.png") if path.stem not in known]
        return self.queue.ended_ids() + orphans

    def _forget(self, job_id: str) -> None:
        with contextlib.suppress(Refused):
            self.queue.forget(job_id)


@contextlib.contextmanager
def _disk_refusal(name: str | None):
    """The server's disk refusing an upload (full, a file-size limit) is a 507 naming the upload, not a 500."""
    try:
        yield
    except OSError as e:
        raise Refused(507, f"{_label(name)}: the server could not store it ({e.strerror or type(e).__name__}); "
                           "delete some uploads or results, or try later") from None
