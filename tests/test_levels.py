"""The level loop's seams: a Job makes its inputs' Views once; core reaches a capability (the cluster of
--scheduler) only through its hook, never by importing it."""
from __future__ import annotations

import pytest

import stylize
from stylize.core.run import levels
from stylize.core.evaluation import remote
from stylize.core.errors import UsageError
from stylize.core.request.settings import Settings

from .test_imports import import_graph


def test_a_job_makes_its_views_once(tiny, photos, monkeypatch):
    made = []
    init = levels.Views.__init__

    def counted(self, *args):
        made.append(self)
        init(self, *args)

    monkeypatch.setattr(levels.Views, "__init__", counted)
    job = stylize.Job(photos["coffee"], photos["astronaut"], **tiny, iterations=4, length=48, scales=2,
                      preserve_colors=True)
    job.run()
    assert len(made) == 1 and job.views is made[0]


def test_core_imports_no_capability():
    """Arrows point into core: stylize.cluster registers with core's hook, core never imports it."""
    upward = [f"{module} imports {target}" for module, targets in import_graph().items()
              if module.startswith("stylize.core") for target in targets
              if not target.startswith("stylize.core")]
    assert not upward, "; ".join(upward)


def test_the_cluster_is_registered_and_a_scheduler_without_it_is_one_line(monkeypatch):
    settings = Settings(scheduler="tcp://127.0.0.1:1")
    assert type(remote.remote_for(settings)).__name__ == "DaskRemote"
    assert remote.remote_for(Settings()) is None
    monkeypatch.setattr(remote, "_FACTORIES", [])
    with pytest.raises(UsageError, match=r"^--scheduler tcp://127\.0\.0\.1:1: nothing here runs tiles"):
        remote.remote_for(settings)
