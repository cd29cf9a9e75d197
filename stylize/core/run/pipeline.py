"""The style-transfer pipeline: a run's plugins loaded, checked against its plan, and run level by level.

images -> backend features -> loss targets; then per evaluation:
optimizer -> objective -> backend forward -> losses -> backend backward.

``Pipeline.load`` is the expensive part (the network and its weights);
what can be refused without it is refused before, by ``Settings.validate``
and the plan's checks. ``transfer`` is the whole run for arrays in memory;
``stylize.core.run.job.Job`` adds files, checkpoints and events around the same
pieces.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .. import plugins
from ..contracts import Backend, Callback, Optimizer
from ..evaluation.objective import Objective, WeightedLoss, build_losses, make_backend
from ..io.inputs import Inputs, one_or_many
from ..planning.plan import Level, Plan, check_network_sizes, complete, make_plan
from ..request.settings import Settings
from .events import Estimate
from .levels import Start, StepHook, Views, run_levels
from .threads import run_threads

@dataclass
class Pipeline:
    """The plugins of one run, loaded and checked against its plan: one backend serves every level."""

    settings: Settings
    plan: Plan
    backend: Backend
    losses: list[WeightedLoss]
    optimizer: Optimizer

    @classmethod
    def load(cls, settings: Settings, plan: Plan) -> "Pipeline":
        """Load the network and the other plugins; refuse a plan the network cannot take (ImageError)."""
        backend_cls = plugins.backend_class(settings)
        losses = build_losses(settings, backend_cls)
        backend = make_backend(settings, losses, backend_cls)
        check_network_sizes(plan, backend.smallest_input(), settings.backend)
        optimizer = plugins.make_optimizer(settings)
        return cls(settings, plan, backend, losses, optimizer)

    @functools.cached_property
    def planned(self) -> Plan:
        """The complete plan (``plan.complete``): each level's evaluation, optimizer and costs, made once.
        Raises ResourceError when the run cannot fit in memory, UsageError for a tiling it cannot use."""
        return complete(self.plan, self.settings, self.backend, self.losses, self.optimizer)

    def estimate(self) -> Estimate:
        """Memory and time the run is expected to take: the complete plan's sum."""
        return Estimate.of(self.planned)

    def run(self, inputs: Inputs, on_step: StepHook, start: Start | None = None,
            on_level: Callable[[Level], None] | None = None, views: Views | None = None) -> np.ndarray:
        """Optimize level by level; return the image as the user sees it. ``views``: the inputs' ``Views``
        where the caller made them already (a Job, for its first image)."""
        # After the backend loaded its BLAS, so that the limit reaches Caffe's too.
        with run_threads(self.settings.threads):
            return run_levels(self.settings, self.backend, self.losses, self.planned,
                              views or Views(inputs, self.settings), on_step, start, on_level)


def transfer(content: np.ndarray, style: np.ndarray | Sequence[np.ndarray], settings: Settings,
             callback: Callback | None = None, *, content_mask: np.ndarray | None = None,
             style_masks: Sequence[np.ndarray] | None = None, start: Start | None = None) -> np.ndarray:
    """Stylize ``content`` (at output size) with ``style`` (one image or several); return RGB.

    The whole run for images already in memory (HxWx3 float RGB in [0, 1]):
    coarse to fine, each level starting from the previous level's result
    scaled up. Semantic masks (colour-coded images, one per style) restrict
    each style region to its own output region. ``start`` resumes an
    interrupted run; ``callback`` receives each ``StepResult``. Only the
    network's own smallest input bounds the sizes here: the 16 px floor of
    ``stylize()``, a Job and the CLI is for files, not for experiments on
    arrays with small networks.
    """
    settings.validate()
    inputs = Inputs(content, one_or_many(style), content_mask, None if style_masks is None else list(style_masks))
    inputs.check(settings.style_weights)
    plan = make_plan(settings, inputs.content.shape, [s.shape for s in inputs.styles])
    pipeline = Pipeline.load(settings, plan)
    pipeline.estimate()  # refuse a run that cannot fit in memory now, not when the kernel kills it

    def on_step(result, _objective: Objective) -> None:
        if callback is not None:
            callback(result)

    return pipeline.run(inputs, on_step, start)
