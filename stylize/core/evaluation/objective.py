"""The objective: loss plugins built from the settings, given their targets, summed over one network pass.

One evaluation is one backend forward, every loss on the features it
reads, and one backward of their weighted gradients. Targets are given once
per coarse-to-fine level (``make_objective``), at that level's resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .. import plugins
from ..contracts import IMAGE, Backend, Images, Loss, StyleTarget
from ..errors import NumericalError, UsageError
from ..io.inputs import blend_weights, one_or_many
from ..request.fields import parse_layers
from ..request.settings import Settings


@dataclass
class WeightedLoss:
    name: str
    loss: Loss
    weight: float


class Objective:
    """Weighted sum of losses over one backend forward/backward per call.

    ``terms`` holds each loss's unweighted value from the latest call, so
    callers can report content and style separately.
    """

    def __init__(self, backend: Backend, losses: Sequence[WeightedLoss]):
        self.backend, self.losses = backend, list(losses)
        self.layers = sorted({layer for term in self.losses for layer in term.loss.layers})
        self.reads_image = any(term.loss.role == "image" for term in self.losses)
        self.terms: dict[str, float] = {}
        self.evaluations = 0

    def weighted_terms(self) -> dict[str, float]:
        """Each term's share of the latest value (its weight times its value): what to balance."""
        return {term.name: term.weight * self.terms[term.name] for term in self.losses if term.name in self.terms}

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        features = dict(self.backend.forward(x, self.layers)) if self.layers else {}
        if self.reads_image:
            features[IMAGE] = self.backend.deprocess(x)
        total, grads = 0.0, {}
        for term in self.losses:
            value, layer_grads = term.loss(features)
            total += self.add_term(term, value, layer_grads, grads)
        image_grad = grads.pop(IMAGE, None)
        grad = self.backend.backward(grads) if grads else np.zeros_like(x)
        if image_grad is not None:
            grad += self.backend.image_gradient(image_grad)
        return self.finish(total, grad)

    def add_term(self, term: WeightedLoss, value: float, layer_grads: Mapping[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> float:
        """Record ``term``'s value; weight its gradients and add them into ``grads``; return its weighted value."""
        self.terms[term.name] = value
        # In place: a loss's gradient arrays are the caller's (see Loss.__call__),
        # so no layer-sized copy is made per term.
        for layer, g in layer_grads.items():
            if term.weight != 1.0:
                g *= np.float32(term.weight)
            if layer in grads:
                grads[layer] += g
            else:
                grads[layer] = g
        return term.weight * value

    def finish(self, total: float, grad: np.ndarray) -> tuple[float, np.ndarray]:
        """Count the evaluation; refuse a value or gradient that is not finite."""
        self.evaluations += 1
        if not (np.isfinite(total) and np.isfinite(grad).all()):
            bad = ", ".join(name for name, value in self.terms.items() if not np.isfinite(value))
            raise NumericalError(f"the objective became {total} ({bad or 'gradient'} not finite); "
                                 "lower the optimizer's step size or the loss weights")
        return total, grad


#: The image area (pixels) at which ``ratio`` has the reference tool's meaning.
REFERENCE_AREA = 512 * 512


def content_weight(shape: Sequence[int]) -> float:
    """Weight of content terms for an HxW output, so that ``ratio`` means the same at every size.

    Gatys' content loss sums over positions (it grows with the image area)
    while the Gram loss is normalized per position; with fixed weights a small
    image would be all style and a large one all content, and multi-scale
    levels would disagree. Scaling content by REFERENCE_AREA / (H*W) keeps the
    balance of a 512x512 run, where the weight is exactly the reference's 1.
    """
    return REFERENCE_AREA / float(shape[0] * shape[1])


def build_losses(settings: Settings, backend_cls: type[Backend]) -> list[WeightedLoss]:
    """Instantiate the losses of ``settings`` with their layers and base weights.

    The losses are ``plugins.loss_classes``' (``content`` joins a run that
    has no content term). A loss's base weight is 1 for content terms, ``ratio`` for
    style terms and ``default_weight`` for image terms, unless its options
    give a ``weight``; content and image terms are further scaled by
    ``content_weight`` at each resolution (both sum over pixels).
    """
    classes = plugins.loss_classes(settings)
    layers = {"content": settings.content_layers or backend_cls.default_content_layers,
              "style": settings.style_layers or backend_cls.default_style_layers,
              "image": ()}
    unknown = {name: cls.role for name, cls in classes.items() if cls.role not in layers}
    if unknown:
        raise UsageError(f"loss plugin(s) with unknown role: {unknown}; roles are content, style, image")
    terms = []
    for name, cls in classes.items():
        options = settings.options_for(name)
        base = {"content": 1.0, "style": settings.ratio}.get(cls.role, cls.default_weight)
        weight = float(options.pop("weight", base))
        term_layers = options.pop("layers", layers[cls.role])
        if isinstance(term_layers, str):
            term_layers = parse_layers(term_layers) or []
        if isinstance(term_layers, Mapping):
            options.setdefault("layer_weights", dict(term_layers))
        if cls.role != "image" and not term_layers:
            raise UsageError(f"backend {settings.backend!r} has no default {cls.role} layers; "
                             f"name them with --{cls.role}-layers")
        terms.append(WeightedLoss(name, cls(term_layers, **options), weight))
    return terms


def make_objective(backend: Backend, losses: Sequence[WeightedLoss], content: np.ndarray,
                   style: np.ndarray | Sequence[np.ndarray], *, style_weights: Sequence[float] | None = None,
                   regions: np.ndarray | None = None,
                   style_regions: Sequence[np.ndarray] | None = None) -> Objective:
    """Give each loss its target at this resolution; weight content and image terms by area.

    ``style`` is one image or several (blended by ``style_weights``);
    ``regions`` and ``style_regions`` are semantic region masks (KxHxW) of
    the output and of each style image, at their sizes.
    (``stylize.core.evaluation.tiled_objective.make_tiled_objective`` does the same tile by tile.)
    """
    styles = one_or_many(style)
    scaled = prepare_terms(losses, Images(content, styles, blend_weights(style_weights, len(styles)), regions,
                                          style_regions))
    content_terms = [t for t in losses if t.loss.role == "content"]
    if content_terms:
        features = _features(backend, content, content_terms)
        for term in content_terms:
            term.loss.set_target(features)
    style_terms = [t for t in losses if t.loss.role == "style"]
    if style_terms:
        weights = blend_weights(style_weights, len(styles))
        targets = [StyleTarget(_features(backend, image, style_terms), weight,
                               None if style_regions is None else style_regions[i])
                   for i, (image, weight) in enumerate(zip(styles, weights))]
        for term in style_terms:
            term.loss.set_style_targets(targets, regions)
    return Objective(backend, scaled)


def prepare_terms(losses: Sequence[WeightedLoss], images: Images) -> list[WeightedLoss]:
    """Give every loss the level's images and image terms their target; return the terms
    weighted for this resolution (content and image terms by area, see ``content_weight``)."""
    for term in losses:
        term.loss.set_images(images)
        if term.loss.role == "image":
            term.loss.set_target({IMAGE: images.content})
    area_weight = content_weight(images.content.shape)
    return [WeightedLoss(t.name, t.loss, t.weight * (1.0 if t.loss.role == "style" else area_weight))
            for t in losses]


def _features(backend: Backend, image: np.ndarray, terms: Sequence[WeightedLoss]) -> dict[str, np.ndarray]:
    """Copies of the features ``terms`` read, for ``image`` (the backend's own are overwritten)."""
    wanted = sorted({layer for t in terms for layer in t.loss.layers})
    return {layer: f.copy() for layer, f in backend.features(backend.preprocess(image), wanted).items()}


def make_backend(settings: Settings, losses: Sequence[WeightedLoss],
                 backend_cls: type[Backend] | None = None) -> Backend:
    """The backend of ``settings``, reading the layers ``losses`` read (``plugins.make_backend``)."""
    return plugins.make_backend(settings, (layer for term in losses for layer in term.loss.layers), backend_cls)
