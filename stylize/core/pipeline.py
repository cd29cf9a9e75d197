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

from . import plugins
from .contracts import IMAGE, Backend, Callback, Loss, StepResult
from .errors import NumericalError, UsageError
from .images import fit_long_side, load_image, resize


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
    #: Long side of the output in pixels; the style image is scaled to match.
    length: int = 512
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
        if not self.ratio > 0 or not np.isfinite(self.ratio):
            raise UsageError(f"ratio must be a positive number, got {self.ratio}")
        plugins.load("stylize.backends", self.backend)
        plugins.load("stylize.optimizers", self.optimizer)
        for loss in self.losses:
            plugins.load("stylize.losses", loss)
        named = {self.backend, self.optimizer, "content", *self.losses}
        stray = sorted(set(self.options) - named)
        if stray:
            raise UsageError(f"options given for {', '.join(stray)}, which this run does not use "
                             f"(it uses {', '.join(sorted(named))})")

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
            for layer, g in layer_grads.items():
                scaled = term.weight * g
                grads[layer] = grads[layer] + scaled if layer in grads else scaled
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


def pink_noise(shape: tuple[int, int], exponent: float, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 noise with a 1/f^exponent spectrum, scaled into [0, 1] (the reference's init)."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = np.fft.rfft2(rng.standard_normal((h, w))) / f ** exponent
        c = np.fft.irfft2(spectrum, s=(h, w))
        channels.append((c - c.min()) / (np.ptp(c) or 1.0))
    return np.stack(channels, axis=-1).astype(np.float32)


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int | None) -> np.ndarray:
    if init == "content":
        return content
    if init == "style":
        return resize(style, content.shape[:2])
    if init == "noise":
        return pink_noise(content.shape[:2], 1.0, np.random.default_rng(seed))
    path = Path(init)
    if not path.exists():
        raise UsageError(f"--init {init!r}: not 'content', 'style', 'noise' or an existing image")
    return resize(load_image(path), content.shape[:2])


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


def scale_lengths(length: int, scales: int | None) -> list[int]:
    """Long sides of the coarse-to-fine levels, ending at ``length``.

    Automatic: halve while the coarsest level stays at least MIN_SCALE_LENGTH
    (so 512 -> 128, 256, 512; 200 -> 200). Below that the deepest style layers
    see only a few positions and coarse results stop helping.
    """
    if scales is None:
        scales = 1
        while length / 2 ** scales >= MIN_SCALE_LENGTH:
            scales += 1
    return [max(1, round(length / 2 ** k)) for k in reversed(range(scales))]


def split_iterations(total: int, levels: int) -> list[int]:
    """Iterations per level, halving from coarse to fine (4:2:1 for three levels).

    A coarse iteration costs a quarter of the next level's, so most of the
    style is built where pixels are cheap; the finest level refines detail.
    """
    shares = [2.0 ** (levels - 1 - k) for k in range(levels)]
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts


#: Smallest long side for an automatic coarse level.
MIN_SCALE_LENGTH = 128


def load_inputs(content_path, style_path, length: int) -> tuple[np.ndarray, np.ndarray]:
    content = load_image(content_path)
    style = load_image(style_path)
    content = resize(content, fit_long_side(content.shape[:2], length))
    style = resize(style, fit_long_side(style.shape[:2], length))
    return content, style


def make_objective(backend: Backend, losses: Sequence[WeightedLoss], content: np.ndarray,
                   style: np.ndarray) -> Objective:
    """Give each loss its target at this resolution; weight content and image terms by area."""
    area_weight = content_weight(content.shape)
    for term in losses:
        if term.loss.role == "image":
            term.loss.set_target({IMAGE: content})
    for role, image in (("content", content), ("style", style)):
        terms = [t for t in losses if t.loss.role == role]
        if terms:
            wanted = sorted({layer for t in terms for layer in t.loss.layers})
            features = backend.forward(backend.preprocess(image), wanted)
            features = {layer: f.copy() for layer, f in features.items()}
            for term in terms:
                term.loss.set_target(features)
    scaled = [WeightedLoss(t.name, t.loss, t.weight * (1.0 if t.loss.role == "style" else area_weight))
              for t in losses]
    return Objective(backend, scaled)


def make_backend(settings: Settings, losses: Sequence[WeightedLoss]) -> Backend:
    backend_cls = plugins.load("stylize.backends", settings.backend)
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    return backend_cls(layers, gpu=settings.gpu, **settings.options_for(settings.backend))


def transfer(content: np.ndarray, style: np.ndarray, settings: Settings,
             callback: Callback | None = None) -> np.ndarray:
    """Stylize ``content`` (at output size) with ``style``; return the RGB image.

    Runs coarse to fine: each level optimizes at a fraction of the size,
    starting from the previous level's result scaled up. One backend serves
    every level (Caffe reshapes its input); targets are recomputed per level.
    """
    settings.validate()
    losses = build_losses(settings, plugins.load("stylize.backends", settings.backend))
    backend = make_backend(settings, losses)
    # After the backend loaded its BLAS, so that the limit reaches Caffe's too.
    with _blas_threads(settings.threads):
        return _optimize(content, style, settings, losses, backend, callback)


def _blas_threads(threads: int | None):
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads, user_api="blas")


def _optimize(content: np.ndarray, style: np.ndarray, settings: Settings, losses: Sequence[WeightedLoss],
              backend: Backend, callback: Callback | None) -> np.ndarray:
    """The coarse-to-fine loop of ``transfer``."""
    optimizer = plugins.load("stylize.optimizers", settings.optimizer)(
        **settings.options_for(settings.optimizer))
    lengths = scale_lengths(max(content.shape[:2]), settings.scales)
    budgets = split_iterations(settings.iterations, len(lengths))
    done, image = 0, None
    for level, (length, iterations) in enumerate(zip(lengths, budgets)):
        shape = fit_long_side(content.shape[:2], length)
        level_content = resize(content, shape)
        level_style = resize(style, fit_long_side(style.shape[:2], length))
        objective = make_objective(backend, losses, level_content, level_style)
        if image is None:
            image = initial_image(settings.init, level_content, level_style, settings.seed)
        x = backend.preprocess(resize(image, shape))

        last_good = x

        def report(result: StepResult, level=level, offset=done) -> None:
            nonlocal last_good
            last_good = result.x
            result.step += offset
            result.level, result.levels = level, len(lengths)
            result.to_image = backend.deprocess
            if callback is not None:
                callback(result)

        if iterations > 0:
            try:
                x = optimizer.minimize(objective, x, backend.input_bounds(x.shape), iterations, report)
            except NumericalError as e:
                raise NumericalError(str(e), image=backend.deprocess(last_good)) from None
        image = backend.deprocess(x)
        done += iterations
    return image
