"""The style-transfer pipeline: plugins composed into one optimization.

images -> backend features -> loss targets; then per evaluation:
optimizer -> objective -> backend forward -> losses -> backend backward.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import plugins
from .contracts import IMAGE, Backend, Callback, Loss, StepResult
from .errors import UsageError
from .images import fit_long_side, load_image, resize


@dataclass
class Settings:
    """Everything that defines a run; the CLI fills it from its options."""

    backend: str = "caffe-vgg19"
    losses: Sequence[str] = ("gram",)
    optimizer: str = "lbfgs"
    #: Weight of style terms relative to content terms (Gatys' beta/alpha), as
    #: the reference tool meant it for a 512x512 image; see ``content_weight``.
    ratio: float = 1e4
    iterations: int = 512
    #: Long side of the output in pixels; the style image is scaled to match.
    length: int = 512
    #: "content", "style", "noise", or the path of an image.
    init: str = "content"
    seed: int | None = None
    gpu: int = -1
    backend_options: dict = field(default_factory=dict)
    optimizer_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Fail fast, before any image is read: ranges and every plugin name."""
        for name in ("iterations", "length"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.ratio > 0 or not np.isfinite(self.ratio):
            raise UsageError(f"ratio must be a positive number, got {self.ratio}")
        plugins.load("stylize.backends", self.backend)
        plugins.load("stylize.optimizers", self.optimizer)
        for loss in self.losses:
            plugins.load("stylize.losses", loss)


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


def build_losses(names: Sequence[str], backend_cls: type[Backend], ratio: float,
                 content_weight: float = 1.0) -> list[WeightedLoss]:
    """Instantiate the named losses with the backend's default layers.

    Gatys transfer is content + style: when no listed loss has the content
    role, the ``content`` loss joins, so ``--loss gram`` gives a proper
    transfer. Content terms get ``content_weight``, style terms ``ratio``,
    image terms their ``default_weight`` times ``content_weight`` (they too
    sum over pixels).
    """
    classes = {name: plugins.load("stylize.losses", name) for name in dict.fromkeys(names)}
    if not any(cls.role == "content" for cls in classes.values()):
        classes = {"content": plugins.load("stylize.losses", "content"), **classes}
    layers = {"content": backend_cls.default_content_layers, "style": backend_cls.default_style_layers,
              "image": ()}
    weights = {"content": content_weight, "style": ratio}
    unknown = {name: cls.role for name, cls in classes.items() if cls.role not in layers}
    if unknown:
        raise UsageError(f"loss plugin(s) with unknown role: {unknown}; roles are content, style, image")
    return [WeightedLoss(name, cls(layers[cls.role]),
                         weights.get(cls.role, cls.default_weight * content_weight))
            for name, cls in classes.items()]


def load_inputs(content_path, style_path, length: int) -> tuple[np.ndarray, np.ndarray]:
    content = load_image(content_path)
    style = load_image(style_path)
    content = resize(content, fit_long_side(content.shape[:2], length))
    style = resize(style, fit_long_side(style.shape[:2], length))
    return content, style


def transfer(content: np.ndarray, style: np.ndarray, settings: Settings,
             callback: Callback | None = None) -> np.ndarray:
    """Stylize ``content`` (already at output size) with ``style``; return the RGB image."""
    settings.validate()
    backend_cls = plugins.load("stylize.backends", settings.backend)
    optimizer_cls = plugins.load("stylize.optimizers", settings.optimizer)
    losses = build_losses(settings.losses, backend_cls, settings.ratio, content_weight(content.shape))
    objective = make_objective(backend_cls, losses, settings, content, style)
    backend = objective.backend
    x0 = backend.preprocess(initial_image(settings.init, content, style, settings.seed))

    def report(result: StepResult) -> None:
        result.to_image = backend.deprocess
        if callback is not None:
            callback(result)

    optimizer = optimizer_cls(**settings.optimizer_options)
    x = optimizer.minimize(objective, x0, backend.input_bounds(x0.shape), settings.iterations, report)
    return backend.deprocess(x)


def make_objective(backend_cls: type[Backend], losses: Sequence[WeightedLoss], settings: Settings,
                   content: np.ndarray, style: np.ndarray) -> Objective:
    """Construct the backend for the losses' layers and give each loss its target."""
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    backend = backend_cls(layers, gpu=settings.gpu, **settings.backend_options)
    sources = {"content": content, "style": style}
    for term in losses:
        if term.loss.role == "image":
            term.loss.set_target({IMAGE: content})
    for role, image in sources.items():
        terms = [t for t in losses if t.loss.role == role]
        if not terms:
            continue
        wanted = sorted({layer for t in terms for layer in t.loss.layers})
        features = backend.forward(backend.preprocess(image), wanted)
        features = {layer: f.copy() for layer, f in features.items()}
        for term in terms:
            term.loss.set_target(features)
    return Objective(backend, losses)
