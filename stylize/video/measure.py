"""How good a stylized clip is: its flicker (warping error) and, per frame, its style and content errors.

The paper's consistency measure: between consecutive output frames, the
mean squared difference after warping the earlier one into the later along
the *source's* optical flow, over the pixels where that flow is reliable
(``flow.warping_error``). A stylization that keeps to the motion scores near
zero; one that repaints every frame differently does not. The style and
content errors are the run's own loss terms (unweighted) at each output
frame, so that consistency bought by giving up style shows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from stylize.core.io.inputs import Source
from stylize.core.run.job import Job
from stylize.core.evaluation.objective import make_objective
from stylize.core.request.settings import Settings

from . import flow


def warping_errors(sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> list[float]:
    """The warping error between each output frame and the next (one value per pair)."""
    errors = []
    for i in range(1, len(sources)):
        backward = flow.flow(sources[i], sources[i - 1])
        mask = flow.reliability(flow.flow(sources[i - 1], sources[i]), backward)
        errors.append(flow.warping_error(outputs[i], outputs[i - 1], backward, mask))
    return errors


def frame_errors(settings: Settings, style: Source | Sequence[Source], sources: Sequence[np.ndarray],
                 outputs: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """Each output frame's unweighted loss terms (``gram``, ``content`` ...) against its source and the style."""
    job = Job(sources[0], style, settings, checkpoint_every=0)
    pipeline = job.pipeline
    backend, styles = pipeline.backend, job.inputs.styles
    found = []
    for source, output in zip(sources, outputs):
        objective = make_objective(backend, pipeline.losses, source, styles, style_weights=settings.style_weights)
        objective(backend.preprocess(output))
        found.append(dict(objective.terms))
    return found
