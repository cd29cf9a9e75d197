"""The level loop: one optimization per level of the plan, each starting from the last one's result.

One backend serves every level (Caffe reshapes its input); the losses'
targets are recomputed per level at its resolution. Progress leaves through
one hook, ``on_step``, which receives every optimizer ``StepResult`` with
the run's step count, the level and the conversions to an image filled in.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..contracts import Backend, StepResult
from ..errors import NumericalError
from ..evaluation.objective import Objective, WeightedLoss, make_objective
from ..evaluation.remote import remote_for
from ..evaluation.tiled_objective import make_tiled_objective
from ..io.images import resize
from ..io.inputs import Inputs
from ..io.masks import resize_regions, split_regions
from ..planning.plan import Level, Plan
from ..request.initial import start_image
from ..request.settings import Settings
from . import colors
from .convergence import Stall


@dataclass
class Start:
    """Where a resumed run picks up: the iteration reached and its working image (``StepResult.state``)."""

    step: int
    image: np.ndarray


class Views:
    """The inputs as the network sees them, and the way back to the user's colours.

    With ``preserve_colors`` the network sees luminance only (the style's
    matched to the content's) and each result takes the content's colours.
    Semantic masks are split into soft regions once, here.
    """

    def __init__(self, inputs: Inputs, settings: Settings):
        self.original = inputs.content
        self.luminance = settings.preserve_colors
        styles = inputs.styles
        if settings.match_colors:
            styles = [colors.match_colors(s, inputs.content) for s in styles]
        self.content = inputs.content
        if self.luminance:
            styles = [colors.match_luminance(s, inputs.content) for s in styles]
            self.content = self.seen(inputs.content)
        self.styles = styles
        self.regions = self.style_regions = None
        if inputs.content_mask is not None:
            self.regions, self.style_regions = split_regions(inputs.content_mask, inputs.style_masks,
                                                             settings.mask_tolerance)

    def seen(self, image: np.ndarray) -> np.ndarray:
        """An image the user gave (an init file, a resumed result) as the network sees it."""
        return colors.gray(colors.luminance(image)) if self.luminance else image

    def shown(self, image: np.ndarray) -> np.ndarray:
        """A network result as the user should see it."""
        if not self.luminance:
            return image
        return colors.restore_colors(image, resize(self.original, image.shape[:2]))


StepHook = Callable[[StepResult, Objective], None]
#: What a level's optimizer left for the next level: its class and its ``carry_over()``.
Carried = tuple[type, object]


def run_levels(settings: Settings, backend: Backend, losses: Sequence[WeightedLoss], plan: Plan, views: Views,
               on_step: StepHook, start: Start | None = None,
               on_level: Callable[[Level], None] | None = None) -> np.ndarray:
    """Optimize every level of ``plan`` not finished at ``start`` with the loaded ``backend`` and ``losses``;
    return the image as the user sees it."""
    image = None if start is None else start.image  # the working image, as the network saw it
    step = 0 if start is None else start.step
    carried = None  # what a level's optimizer leaves for the next one (``Optimizer.carry_over``)
    for level, done in plan.remaining(step):
        if on_level is not None:
            on_level(level)
        image, carried = run_level(settings, backend, losses, level, len(plan.levels), views, on_step, image,
                                   done, carried)
    return views.shown(image)


def run_level(settings: Settings, backend: Backend, losses: Sequence[WeightedLoss], level: Level, levels: int,
              views: Views, on_step: StepHook,
              image: np.ndarray | None, done: int = 0,
              carried: Carried | None = None) -> tuple[np.ndarray, Carried | None]:
    """One level, as its plan says (evaluation, optimizer): targets at its size, a start from ``image``
    (or the initial image), the optimizer's run.

    ``done`` iterations of it were finished before a resume (its optimizer
    then starts afresh); ``carried``: what the last level's optimizer left,
    passed on where this level's is of the same class. Returns the working
    image reached and what this level's optimizer leaves for the next; a NaN
    or infinite objective raises NumericalError carrying the last good
    image, as the user sees it.
    """
    shape = level.shape
    content = resize(views.content, shape)
    styles = [resize(s, size) for s, size in zip(views.styles, level.style_shapes)]
    make = make_objective
    if level.tiles is not None:  # the tiles' passes here, or on the machines the plan spread them over
        elsewhere = remote_for(settings) if level.machines else None
        make = functools.partial(make_tiled_objective if elsewhere is None else elsewhere.objective,
                                 tiles=level.tiles)
    objective = make(
        backend, losses, content, styles, style_weights=settings.style_weights,
        regions=None if views.regions is None else resize_regions(views.regions, shape),
        style_regions=None if views.style_regions is None else [
            resize_regions(r, s.shape[:2]) for r, s in zip(views.style_regions, styles)])
    if image is None:
        image = views.seen(start_image(settings, views.content, views.styles, shape))
    x = backend.preprocess(resize(image, shape))
    last_good = x
    stalled = Stall(settings.tol)

    def report(result: StepResult) -> None:
        nonlocal last_good
        last_good = result.x
        result.step += level.first_step + done
        result.level, result.levels = level.index, levels
        result.to_image = lambda x: views.shown(backend.deprocess(x))
        result.to_state = backend.deprocess
        result.converged = stalled(result.value) and result.step < level.last_step
        on_step(result, objective)
        if result.converged:
            raise StopIteration  # the optimizer returns the best point it has

    if level.iterations - done > 0:
        optimizer = level.optimizer
        given = {"carried": carried[1]} if carried is not None and carried[0] is type(optimizer) and not done else {}
        try:
            x = optimizer.minimize(objective, x, backend.input_bounds(x.shape), level.iterations - done, report,
                                   **given)
        except NumericalError as e:
            raise NumericalError(str(e), image=views.shown(backend.deprocess(last_good))) from None
        carry_over = getattr(optimizer, "carry_over", None)  # optional in the Optimizer contract
        state = None if carry_over is None else carry_over()
        carried = None if state is None else (type(optimizer), state)
    return backend.deprocess(x), carried
