"""The style-transfer pipeline: plugins composed into one optimization.

images -> backend features -> loss targets; then per evaluation:
optimizer -> objective -> backend forward -> losses -> backend backward.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import colors, memory, plugins
from .contracts import IMAGE, Backend, Callback, Images, Loss, StepResult, StyleTarget
from .errors import ImageError, NumericalError, UsageError
from .images import fit_long_side, resize
from .initial import NAMED as NAMED_INITS
from .initial import initial_image, pink_noise  # noqa: F401  (part of the pipeline's API)
from .inputs import Inputs, load_inputs, one_or_many  # noqa: F401
from .presets import preset
from .masks import TOLERANCE, resize_regions, split_regions
from .schedule import MIN_SCALE_LENGTH, scale_lengths, split_iterations  # noqa: F401


@dataclass
class Settings:
    """Everything that defines a run; the CLI and the Python API fill it in."""

    backend: str = "caffe-vgg19"
    losses: Sequence[str] = ("gram",)
    optimizer: str = "lbfgs"
    #: Weight of style terms relative to content terms (Gatys' beta/alpha), as
    #: the reference tool meant it for a 512x512 image; see ``content_weight``.
    ratio: float = 1e4
    #: Total optimizer iterations, over all scales.
    iterations: int = 512
    #: Long side of the output in pixels; style images are scaled to match.
    length: int = 512
    #: Long side of the style images relative to the output's (the reference's --style-scale).
    style_scale: float = 1.0
    #: Blend weights of several style images (normalized); None weighs them equally.
    style_weights: Sequence[float] | None = None
    #: Keep the content's colours: style is transferred on luminance only.
    preserve_colors: bool = False
    #: Recolour the style images to the content's colour mean and covariance first.
    match_colors: bool = False
    #: Distance (0..255 RGB) under which two semantic-mask colours are the same region.
    mask_tolerance: float = TOLERANCE
    #: Coarse-to-fine levels; None picks them from ``length`` (see ``scale_lengths``).
    scales: int | None = None
    #: "content", "style", "noise", or the path of an image.
    init: str = "content"
    seed: int | None = None
    gpu: int = -1
    #: BLAS threads while optimizing; None leaves OpenBLAS as the user set it
    #: (all cores unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS say otherwise).
    threads: int | None = None
    #: Layers for content / style terms; None takes the backend's defaults.
    content_layers: Sequence[str] | None = None
    style_layers: Sequence[str] | None = None
    #: Options for plugins, by plugin name: ``{"adam": {"lr": 2.0}, "tv": {"weight": 1e5}}``.
    #: A loss's ``weight`` replaces its default weight; ``layers`` its layers.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> None:
        """Fail fast, before any image is read: ranges and every plugin name."""
        for name in ("iterations", "length"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be at least 1, got {self.threads}")
        if self.scales is not None and self.scales < 1:
            raise UsageError(f"scales must be at least 1, got {self.scales}")
        if self.init not in NAMED_INITS and not Path(self.init).is_file():
            raise UsageError(f"--init {self.init!r}: not {', '.join(NAMED_INITS)} or an existing image file")
        for name in ("ratio", "style_scale"):
            if not getattr(self, name) > 0 or not np.isfinite(getattr(self, name)):
                raise UsageError(f"{name} must be a positive number, got {getattr(self, name)}")
        weights = self.style_weights
        if weights is not None and (not all(w >= 0 and np.isfinite(w) for w in weights) or sum(weights) <= 0):
            raise UsageError(f"style weights must be non-negative with a positive sum, got {list(weights)}")
        if self.gpu < -1:
            raise UsageError(f"--gpu {self.gpu}: give -1 for the CPU (GPU ids start at 0)")
        plugins.load("stylize.backends", self.backend).check_device(self.gpu)
        plugins.load("stylize.optimizers", self.optimizer)
        for loss in self.losses:
            plugins.load("stylize.losses", loss)
        named = {self.backend, self.optimizer, "content", *self.losses}
        stray = sorted(set(self.options) - named)
        if stray:
            raise UsageError(f"options given for {', '.join(stray)}, which this run does not use "
                             f"(it uses {', '.join(sorted(named))})")

    @classmethod
    def from_preset(cls, name: str, **given: Any) -> "Settings":
        """The settings of preset ``name`` (see ``stylize.core.presets``), with ``given`` on top."""
        return cls(**{**preset(name), **given})

    def options_for(self, name: str) -> dict[str, Any]:
        return dict(self.options.get(name, {}))


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

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        features = dict(self.backend.forward(x, self.layers)) if self.layers else {}
        if self.reads_image:
            features[IMAGE] = self.backend.deprocess(x)
        total, grads = 0.0, {}
        for term in self.losses:
            value, layer_grads = term.loss(features)
            self.terms[term.name] = value
            total += term.weight * value
            # In place: a loss's gradient arrays are the caller's (see Loss.__call__),
            # so no layer-sized copy is made per term.
            for layer, g in layer_grads.items():
                if term.weight != 1.0:
                    g *= np.float32(term.weight)
                if layer in grads:
                    grads[layer] += g
                else:
                    grads[layer] = g
        self.evaluations += 1
        image_grad = grads.pop(IMAGE, None)
        grad = self.backend.backward(grads) if grads else np.zeros_like(x)
        if image_grad is not None:
            grad += self.backend.image_gradient(image_grad)
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

    Gatys transfer is content + style: when no listed loss has the content
    role, the ``content`` loss joins, so ``--loss gram`` gives a proper
    transfer. A loss's base weight is 1 for content terms, ``ratio`` for
    style terms and ``default_weight`` for image terms, unless its options
    give a ``weight``; content and image terms are further scaled by
    ``content_weight`` at each resolution (both sum over pixels).
    """
    classes = {name: plugins.load("stylize.losses", name) for name in dict.fromkeys(settings.losses)}
    if not any(cls.role == "content" for cls in classes.values()):
        classes = {"content": plugins.load("stylize.losses", "content"), **classes}
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
            term_layers = [part for part in term_layers.replace(",", " ").split() if part]
        if isinstance(term_layers, Mapping):
            options.setdefault("layer_weights", dict(term_layers))
        if cls.role != "image" and not term_layers:
            raise UsageError(f"backend {settings.backend!r} has no default {cls.role} layers; "
                             f"name them with --{cls.role}-layers")
        terms.append(WeightedLoss(name, cls(term_layers, **options), weight))
    return terms


def blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Style blend weights normalized to sum 1 (equal when not given)."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    return [w / sum(weights) for w in weights]


def make_objective(backend: Backend, losses: Sequence[WeightedLoss], content: np.ndarray,
                   style: np.ndarray | Sequence[np.ndarray], *, style_weights: Sequence[float] | None = None,
                   regions: np.ndarray | None = None,
                   style_regions: Sequence[np.ndarray] | None = None) -> Objective:
    """Give each loss its target at this resolution; weight content and image terms by area.

    ``style`` is one image or several (blended by ``style_weights``);
    ``regions`` and ``style_regions`` are semantic region masks (KxHxW) of
    the output and of each style image, at their sizes.
    """
    styles = one_or_many(style)
    area_weight = content_weight(content.shape)
    images = Images(content, styles, blend_weights(style_weights, len(styles)), regions, style_regions)
    for term in losses:
        term.loss.set_images(images)
        if term.loss.role == "image":
            term.loss.set_target({IMAGE: content})
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
    scaled = [WeightedLoss(t.name, t.loss, t.weight * (1.0 if t.loss.role == "style" else area_weight))
              for t in losses]
    return Objective(backend, scaled)


def _features(backend: Backend, image: np.ndarray, terms: Sequence[WeightedLoss]) -> dict[str, np.ndarray]:
    """Copies of the features ``terms`` read, for ``image`` (the backend's own are overwritten)."""
    wanted = sorted({layer for t in terms for layer in t.loss.layers})
    return {layer: f.copy() for layer, f in backend.forward(backend.preprocess(image), wanted).items()}


def make_backend(settings: Settings, losses: Sequence[WeightedLoss],
                 backend_cls: type[Backend] | None = None) -> Backend:
    backend_cls = backend_cls or plugins.load("stylize.backends", settings.backend)
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    return backend_cls(layers, gpu=settings.gpu, **settings.options_for(settings.backend))


@dataclass
class Start:
    """Where a resumed run picks up: the iteration reached and its working image (``StepResult.state``)."""

    step: int
    image: np.ndarray


def transfer(content: np.ndarray, style: np.ndarray | Sequence[np.ndarray], settings: Settings,
             callback: Callback | None = None, *, content_mask: np.ndarray | None = None,
             style_masks: Sequence[np.ndarray] | None = None, start: Start | None = None) -> np.ndarray:
    """Stylize ``content`` (at output size) with ``style`` (one image or several); return RGB.

    Runs coarse to fine: each level optimizes at a fraction of the size,
    starting from the previous level's result scaled up. One backend serves
    every level (Caffe reshapes its input); targets are recomputed per level.
    Semantic masks (colour-coded images, one per style) restrict each style
    region to its own output region. ``start`` resumes an interrupted run.
    """
    settings.validate()
    inputs = Inputs(content, one_or_many(style),
                    content_mask, None if style_masks is None else list(style_masks))
    inputs.check(settings.style_weights)
    backend_cls = plugins.load("stylize.backends", settings.backend)
    losses = build_losses(settings, backend_cls)
    backend = make_backend(settings, losses, backend_cls)
    _check_level_sizes(backend, inputs, settings)
    # Refuse a run that cannot fit in memory now, not when the kernel kills it (ResourceError).
    memory.check_fits(backend, settings, inputs.content.shape, [s.shape for s in inputs.styles])
    # After the backend loaded its BLAS, so that the limit reaches Caffe's too.
    with _blas_threads(settings.threads):
        return _optimize(inputs, settings, losses, backend, callback, start)


def _check_level_sizes(backend: Backend, inputs: Inputs, settings: Settings) -> None:
    """Every image, at every level, is at least the network's smallest input (else ImageError)."""
    lengths = scale_lengths(max(inputs.content.shape[:2]), settings.scales)
    low_h, low_w = backend.smallest_input()
    for name, image, scale in (("content image", inputs.content, 1.0),
                               *(("style image", s, settings.style_scale) for s in inputs.styles)):
        h, w = fit_long_side(image.shape[:2], max(1, round(lengths[0] * scale)))
        if h < low_h or w < low_w:
            where = "at the coarsest scale" if len(lengths) > 1 else "at this --length"
            fix = "use fewer --scales or a larger --length" if len(lengths) > 1 else "use a larger --length"
            raise ImageError(f"the {name} would be {w}x{h} px {where}, but backend {settings.backend!r} "
                             f"needs at least {low_w}x{low_h}: {fix}")


def _blas_threads(threads: int | None):
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads, user_api="blas")


class _Views:
    """The inputs as the network sees them, and the way back to the user's colours.

    With ``preserve_colors`` the network sees luminance only (the style's
    matched to the content's) and each result takes the content's colours.
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

    def seen(self, image: np.ndarray) -> np.ndarray:
        """An image the user gave (an init file, a resumed result) as the network sees it."""
        return colors.gray(colors.luminance(image)) if self.luminance else image

    def shown(self, image: np.ndarray) -> np.ndarray:
        """A network result as the user should see it."""
        if not self.luminance:
            return image
        return colors.restore_colors(image, resize(self.original, image.shape[:2]))


def _optimize(inputs: Inputs, settings: Settings, losses: Sequence[WeightedLoss], backend: Backend,
              callback: Callback | None, start: Start | None) -> np.ndarray:
    """The coarse-to-fine loop of ``transfer``."""
    optimizer = plugins.load("stylize.optimizers", settings.optimizer)(
        **settings.options_for(settings.optimizer))
    views = _Views(inputs, settings)
    regions = style_regions = None
    if inputs.content_mask is not None:
        regions, style_regions = split_regions(inputs.content_mask, inputs.style_masks, settings.mask_tolerance)
    lengths = scale_lengths(max(inputs.content.shape[:2]), settings.scales)
    budgets = split_iterations(settings.iterations, len(lengths))
    done, image = 0, None
    if start is not None:
        image = start.image  # the working image (StepResult.state), as the network saw it
    for level, (length, iterations) in enumerate(zip(lengths, budgets)):
        if start is not None and start.step >= done + iterations and level < len(lengths) - 1:
            done += iterations  # finished before the interruption
            continue
        skipped = min(iterations, start.step - done) if start is not None and start.step > done else 0
        shape = fit_long_side(inputs.content.shape[:2], length)
        level_content = resize(views.content, shape)
        style_length = max(1, round(length * settings.style_scale))
        level_styles = [resize(s, fit_long_side(s.shape[:2], style_length)) for s in views.styles]
        objective = make_objective(
            backend, losses, level_content, level_styles, style_weights=settings.style_weights,
            regions=None if regions is None else resize_regions(regions, shape),
            style_regions=None if style_regions is None else [
                resize_regions(r, s.shape[:2]) for r, s in zip(style_regions, level_styles)])
        if image is None:
            image = initial_image(settings.init, level_content, level_styles[0], settings.seed)
            if settings.init not in NAMED_INITS:
                image = views.seen(image)
        x = backend.preprocess(resize(image, shape))

        last_good = x

        def report(result: StepResult, level=level, offset=done + skipped) -> None:
            nonlocal last_good
            last_good = result.x
            result.step += offset
            result.level, result.levels = level, len(lengths)
            result.to_image = lambda x: views.shown(backend.deprocess(x))
            result.to_state = backend.deprocess
            if callback is not None:
                callback(result)

        if iterations - skipped > 0:
            try:
                x = optimizer.minimize(objective, x, backend.input_bounds(x.shape), iterations - skipped, report)
            except NumericalError as e:
                raise NumericalError(str(e), image=views.shown(backend.deprocess(last_good))) from None
        image = backend.deprocess(x)
        done += iterations
    return views.shown(image)
