"""The three plugin contracts: Backend, Loss and Optimizer.

Plugins need not subclass these, but doing so documents the API and keeps
them honest: the pipeline checks ``isinstance`` when it loads a plugin.
Every plugin depends only on this module (through ``stylize.core``), never on
the CLI or on other plugins.

Arrays cross these boundaries as float32 numpy arrays. Images are HxWx3 RGB
in [0, 1]; network inputs are 1x3xHxW in the backend's own space (for Caffe
VGG: BGR, 0..255, ImageNet mean subtracted).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from .options import Option

Features = Mapping[str, np.ndarray]

#: The key under which image-role losses receive the image and return its gradient.
IMAGE = "image"


class Backend(abc.ABC):
    """A frozen network that describes an image at named layers.

    The pipeline reads the class attributes before constructing the backend,
    so that it can tell the constructor exactly which layers the losses need
    (a backend may then cut the network after the deepest one).
    """

    #: Layers read by the content term when the user does not name any; a
    #: mapping ``{layer: weight}`` weights them unequally.
    default_content_layers: ClassVar[Sequence[str] | Mapping[str, float]] = ()
    #: Layers read by style terms when the user does not name any (or a mapping).
    default_style_layers: ClassVar[Sequence[str] | Mapping[str, float]] = ()
    #: The keyword options the constructor takes. The command line offers each
    #: as its own flag (``--pooling``); unknown keys are refused before a run.
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    @abc.abstractmethod
    def __init__(self, layers: Sequence[str], **options):
        """Load the network so that ``forward`` can return ``layers``."""

    @classmethod
    def check_device(cls, gpu: int) -> None:
        """Raise UsageError if this backend cannot run on ``gpu`` (-1: the CPU).

        Called by ``Settings.validate`` before any image is read, and by
        backends on construction; the default accepts every device.
        """

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise UsageError for options that cannot work together (each alone is already checked).

        Called by ``Settings.validate`` before any image is read; the default accepts all.
        """

    @abc.abstractmethod
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 RGB [0, 1] image -> 1x3xHxW network input."""

    @abc.abstractmethod
    def deprocess(self, x: np.ndarray) -> np.ndarray:
        """Network input -> HxWx3 RGB image, clipped to [0, 1]."""

    @abc.abstractmethod
    def input_bounds(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of a valid network input of ``shape``.

        The optimizer keeps pixels inside them, so the result is a real image.
        """

    @abc.abstractmethod
    def forward(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        """Run the network on ``x``; return the features of ``layers``.

        Features are CxHxW (no batch axis). The arrays may be views into the
        network's memory, valid until the next ``forward``: copy to keep.
        """

    @abc.abstractmethod
    def backward(self, grads: Features) -> np.ndarray:
        """Back-propagate dLoss/dfeatures of the last ``forward`` to dLoss/dx."""

    @abc.abstractmethod
    def image_gradient(self, grad: np.ndarray) -> np.ndarray:
        """dLoss/dimage (HxWx3) -> dLoss/dx: the adjoint of ``deprocess`` inside the bounds.

        Lets image-space losses (role ``"image"``) join the same objective.
        """

    def smallest_input(self) -> tuple[int, int]:
        """The smallest (height, width) this network can take without an empty layer.

        The pipeline refuses smaller images (at every coarse-to-fine level)
        before running: networks fail badly on them (Caffe aborts the process).
        """
        return 1, 1

    def estimate_peak_bytes(self, shape: Sequence[int]) -> int | None:
        """Estimated peak resident memory (bytes) of this process while the objective runs
        on an image of ``shape`` (height, width), optimizer state excluded; None: unknown.

        The pipeline compares it with the machine's memory before a run starts.
        """
        return None

    def estimate_flops(self, shape: Sequence[int]) -> int | None:
        """Floating-point operations of one forward + backward at ``shape`` (height, width); None: unknown.

        The run plan turns them into an expected time and an ETA that knows
        a finer level costs more per iteration.
        """
        return None


class Loss(abc.ABC):
    """One weighted term of the objective, computed on features.

    ``role`` says which image provides the target and what the loss reads:

    - ``"content"``: features of ``self.layers``; target from the content image.
    - ``"style"``: features of ``self.layers``; target from the style image.
    - ``"image"``: the output image itself, HxWx3 RGB in [0, 1], under the
      key ``IMAGE``; its target is the content image under the same key.
      ``self.layers`` is empty. Its weight is ``default_weight`` per
      512x512 pixels (see ``stylize.core.pipeline.content_weight``).
    """

    role: ClassVar[str] = "content"
    #: Weight of an image-role term; content and style terms are weighted by the pipeline.
    default_weight: ClassVar[float] = 1.0
    #: The keyword options the constructor takes besides ``layers`` and
    #: ``layer_weights`` (``weight`` and ``layers`` are every loss's, taken by
    #: the pipeline). ``--set NAME.KEY=VALUE`` with another key is refused.
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    def __init__(self, layers: Sequence[str], layer_weights: Mapping[str, float] | None = None,
                 **options):
        """``layer_weights`` (normalized to sum 1) say how much each layer counts; equal by default."""
        self.layers = tuple(layers)
        raw = {layer: float((layer_weights or {}).get(layer, 0.0 if layer_weights else 1.0))
               for layer in self.layers}
        total = sum(raw.values()) or 1.0
        self.layer_weights = {layer: w / total for layer, w in raw.items()}

    def set_images(self, images: "Images") -> None:
        """Receive the run's images at this level's resolution, before any target.

        Override it when the loss needs images that its role does not give:
        an image-space loss that matches the style's colour histogram reads
        ``images.styles`` here. The default ignores them.
        """

    @abc.abstractmethod
    def set_target(self, features: Features) -> None:
        """Receive the features of the target image, once per resolution."""

    def set_style_targets(self, styles: Sequence["StyleTarget"], regions: np.ndarray | None) -> None:
        """Receive every style image's features (style-role losses), once per resolution.

        ``regions`` (RxHxW, in [0, 1], at the output's resolution) says where
        each semantic region lies in the output; each ``StyleTarget`` carries
        the same regions for its own image. Regions and several style images
        need a loss that understands them; the default accepts exactly one
        style image without regions, so simple style losses need only
        ``set_target``.
        """
        if len(styles) != 1 or regions is not None or styles[0].regions is not None:
            from .errors import UsageError
            what = "semantic masks" if regions is not None else "several style images"
            raise UsageError(f"loss {type(self).__name__} does not support {what}; use `gram`")
        self.set_target(styles[0].features)

    @abc.abstractmethod
    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        """Return the loss value and its gradient for each layer read.

        The gradient arrays belong to the caller, who scales and sums them in
        place (a copy per term would cost hundreds of MB at large sizes):
        return fresh arrays, never views of state the loss keeps.
        """


@dataclass
class StyleTarget:
    """One style image as a style loss sees it: its features, blend weight and regions."""

    features: Features
    #: Blend weight; the weights of all style images sum to 1.
    weight: float = 1.0
    #: RxHxW soft masks in [0, 1] at this image's resolution, or None (one region, everywhere).
    regions: np.ndarray | None = None


@dataclass
class Images:
    """The images of a run at one level's resolution, as the network sees them (HxWx3 RGB in [0, 1])."""

    content: np.ndarray
    styles: Sequence[np.ndarray]
    #: Blend weights of ``styles``, summing to 1.
    style_weights: Sequence[float]
    #: RxHxW soft region masks of the output, or None (no semantic masks).
    regions: np.ndarray | None = None
    #: The same regions in each style image (one RxHxW array per style), or None.
    style_regions: Sequence[np.ndarray] | None = None


@dataclass
class StepResult:
    """What an optimizer reports after each iteration (one object, so it can grow)."""

    step: int
    value: float
    x: np.ndarray
    #: Filled in by the pipeline: the coarse-to-fine level (0 = coarsest) and their count.
    level: int = 0
    levels: int = 1
    #: Filled in by the pipeline: the level stops after this iteration, its objective having
    #: stopped improving (``Settings.tol``).
    converged: bool = False
    #: Filled in by the pipeline: the current image, computed only when asked for.
    to_image: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    #: Filled in by the pipeline: the image the optimizer works on (``to_image`` may
    #: post-process it, e.g. put the content's colours back); what a resume starts from.
    to_state: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self.to_image is None:
            raise AttributeError("this result carries no image conversion")
        return self.to_image(self.x)

    @property
    def state(self) -> np.ndarray:
        """The working image to resume from (``pipeline.Start``), before any post-processing."""
        return (self.to_state or self.to_image)(self.x)


#: An objective maps a flat float32 vector to (value, gradient of same shape).
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: A callback receives one StepResult; raising StopIteration ends the run.
Callback = Callable[[StepResult], None]


class Optimizer(abc.ABC):
    """Minimizes an objective over a flat vector within bounds."""

    #: The keyword options the constructor takes (``--set NAME.KEY=VALUE``);
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    def __init__(self, **options):
        """Accept and ignore options meant for other optimizers."""

    def memory_bytes(self, size: int) -> int:
        """Bytes of state this optimizer holds for ``size`` variables (0: negligible or unknown)."""
        return 0

    @abc.abstractmethod
    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback) -> np.ndarray:
        """Return the best vector found after at most ``iterations`` steps.

        Call ``callback`` once per iteration; stop early on StopIteration.
        """
