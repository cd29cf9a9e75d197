"""The plugin contracts: Backend, Loss, Optimizer and StartImage.

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
        """Load the network so that ``forward`` can return ``layers``.

        Besides its declared ``options`` every backend receives ``gpu`` (the
        device, -1: the CPU) and ``threads`` (``--threads``: the CPU threads
        its evaluations may use; None: its own choice). The run also limits
        every BLAS loaded in the process to ``threads``; a backend with its own
        thread pool (PyTorch's, ONNX Runtime's) sets that pool from it. Unknown
        keywords must be accepted and ignored (options meant for other plugins).
        """

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
        A ``backward`` of this input may follow (before the next ``forward``);
        where none will, the core calls ``features`` instead.
        """

    def features(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        """``forward`` when no ``backward`` will follow: a target's features, a tile of a tiled statistics pass.

        An autograd backend can run it without recording a graph (``torch.no_grad()``),
        so that ``forward`` alone need keep one. The default calls ``forward``.
        """
        return self.forward(x, layers)

    @abc.abstractmethod
    def backward(self, grads: Features) -> np.ndarray:
        """Back-propagate dLoss/dfeatures of the last ``forward`` to dLoss/dx (``grads`` may name a subset
        of that forward's layers; a layer without one has a zero gradient)."""

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

    def arithmetic(self, shape: Sequence[int]) -> str:
        """The arithmetic an evaluation at ``shape`` runs in when it is not the backend's ordinary one
        (``"bf16"``); "" (the default) for the ordinary. The same FLOPs take another time in another
        arithmetic, so a run's speed is recorded, and the next run's time estimated, per arithmetic."""
        return ""

    def tiling(self, layers: Sequence[str]) -> "Tiling | None":
        """How ``layers``' features line up with the input, so that the objective can be evaluated
        tile by tile with the whole image's result (``stylize.core.tiling``); None (the default):
        this network cannot be tiled, the image is always evaluated whole."""
        return None


class Loss(abc.ABC):
    """One weighted term of the objective, computed on features.

    ``role`` says which image provides the target and what the loss reads:

    - ``"content"``: features of ``self.layers``; target from the content image.
    - ``"style"``: features of ``self.layers``; target from the style image.
    - ``"image"``: the output image itself, HxWx3 RGB in [0, 1], under the
      key ``IMAGE``; its target is the content image under the same key.
      ``self.layers`` is empty. Its weight is ``default_weight`` per
      512x512 pixels (see ``stylize.core.objective.content_weight``).
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

    def memory_bytes(self, shape: Sequence[int]) -> int:
        """Peak bytes this term holds for an output of ``shape`` (height, width), beyond the features
        and image-sized arrays the backend's and the run's estimates count; 0 (the default): negligible.

        The run's memory estimate (whole and tiled) adds it, so a term that keeps an image-sized
        structure (the affine term's matting Laplacian) is refused before the run, not killed in it.
        """
        return 0

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


@dataclass(frozen=True)
class Tiling:
    """What exact tiled evaluation needs to know of a network (``Backend.tiling``).

    A feature at position i of a layer whose ``strides[layer]`` is s reads
    the input pixels around s*i; tiles start at multiples of ``stride`` (every
    layer's s divides it), so each tile's feature grids line up with the whole
    image's, and a tile whose input reaches ``radius`` pixels beyond its core
    on every side computes the core's features exactly.
    """

    #: Tile origins are multiples of this many input pixels (16 for VGG up to conv5_1).
    stride: int
    #: Input pixels beyond a core that its features read, over the layers read (70 for VGG's conv5_1).
    radius: int
    #: Input pixels per feature position, per layer read.
    strides: Mapping[str, int]
    #: The feature grid (h, w) of each layer read for an input of (h, w) pixels.
    grid: Callable[[Sequence[int]], Mapping[str, tuple[int, int]]] = field(compare=False, repr=False)
    #: Channels of each layer read (for memory estimates; empty when unknown).
    channels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """Where a tile's core lies in a layer's feature grid of the whole image.

    ``rows`` and ``cols`` slice the whole grid (``shape``, h x w): crop a
    full-size array (a content target, a region mask resized to ``shape``)
    with ``window.crop(array)`` to match the core features a tiled loss gets.
    """

    rows: slice
    cols: slice
    #: (h, w) of the whole image's grid at this layer.
    shape: tuple[int, int]

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The core's part of ``array``, whose last two axes are the whole grid."""
        return array[..., self.rows, self.cols]

    @property
    def positions(self) -> int:
        return (self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start)


Windows = Mapping[str, Window]


class TiledLoss:
    """Optional interface of a content or style loss that can be evaluated tile by tile, exactly.

    When the image does not fit in memory whole (``--tile-size``), the
    objective runs the network on tiles and gives each loss only a tile's
    *core* features (``features[layer]``: C x h x w, the positions that tile
    owns; ``windows[layer]`` says where they lie in the whole grid). Losses
    that are sums over positions of something global (a Gram matrix, a sum
    of squares) implement, besides the ordinary ``Loss`` methods:

    - ``tile_statistics(features, windows) -> {name: array}``: additive
      statistics of one tile's core; the objective sums them over all tiles
      (in float64);
    - ``tile_value(totals) -> float``: the loss of the whole image from the
      sums;
    - ``tile_gradient(features, windows, totals) -> {layer: array}``: the
      gradient of the whole image's loss with respect to this core's features
      (core-shaped, fresh arrays), given the sums;

    and style losses, whose target images are tiled as well:

    - ``target_statistics(features, windows, index) -> {name: array}``:
      additive statistics of a core of style image ``index`` (regions:
      ``images.style_regions[index]`` from ``set_images``), summed over its tiles;
    - ``set_target_statistics(totals)``: one sum per style image, in order;
      replaces ``set_style_targets``.

    Content losses receive their target from ``set_target`` as usual, with
    the whole image's features (assembled from tiles). The objective's value
    and gradient must equal the untiled ones; ``stylize.testing.LossContract``
    checks it for every loss that has ``tile_statistics``.
    """

    def tile_statistics(self, features: Features, windows: Windows) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def tile_value(self, totals: Mapping[str, np.ndarray]) -> float:
        raise NotImplementedError

    def tile_gradient(self, features: Features, windows: Windows,
                      totals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def target_statistics(self, features: Features, windows: Windows, index: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def set_target_statistics(self, totals: Sequence[Mapping[str, np.ndarray]]) -> None:
        raise NotImplementedError


def tileable(loss) -> bool:
    """Whether ``loss`` can be evaluated tile by tile: image terms always (they see the whole
    image), content and style terms when they implement ``TiledLoss``."""
    if getattr(loss, "role", None) == "image":
        return True
    needed = ["tile_statistics", "tile_value", "tile_gradient"]
    if loss.role == "style":
        needed += ["target_statistics", "set_target_statistics"]
    return all(getattr(type(loss), name, None) not in (None, getattr(TiledLoss, name)) for name in needed)


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

    def memory_bytes(self, size: int, iterations: int | None = None) -> int:
        """Bytes of state this optimizer holds for ``size`` variables (0: negligible or unknown).

        ``iterations``, where given, is the most a run will take: state that grows with them
        (the float32 L-BFGS history) may count less. Optional to accept (``memory.optimizer_bytes``).
        """
        return 0

    def smaller(self) -> "tuple[Optimizer, str] | None":
        """A variant of this optimizer that holds less state, and what the plan line says of it
        (``"L-BFGS history in float32"``): the run plan takes it for a level where this one does
        not fit the memory limit. None (the default): there is none."""
        return None

    def carry_over(self) -> object | None:
        """What the last ``minimize`` leaves that the next, finer level may start from (Adam's moments,
        L-BFGS's step scale), taken once; None (the default): every level starts afresh.

        Optional: an optimizer that returns something here must accept it back as
        ``minimize(..., carried=state)`` at the next level (same optimizer class), and fit it to
        the new ``x0``'s shape there. Others are never passed ``carried``.
        """
        return None

    @abc.abstractmethod
    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback) -> np.ndarray:
        """Return the best vector found after at most ``iterations`` steps.

        Call ``callback`` once per iteration; stop early on StopIteration.
        """


class StartImage(abc.ABC):
    """What the optimization starts from (``--init NAME``): a picture made from the run's images.

    Registered in the ``stylize.starts`` group. ``image`` is called once per
    run (not on a resume), before the network is loaded, so a driver can show
    the picture at once. It receives the run's images at their working size
    as the network sees them (``Images``: the content, the styles, their
    blend weights) and returns the start at ``shape``; the core converts it
    as the network sees it (luminance only with ``preserve_colors``).
    """

    #: The keyword options the constructor takes (``--set NAME.KEY=VALUE``);
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    def __init__(self, **options):
        """Accept and ignore options meant for other plugins. Keep it cheap: models load in ``image``."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise a StylizeError if this start cannot run with ``options`` (a missing file, a missing extra).

        Called by ``Settings.validate`` before any image is read; the default accepts all.
        """

    def first_level(self, levels: int) -> int:
        """The coarse-to-fine level (0 = coarsest) this start begins at, of ``levels``; the automatic
        schedule skips the levels before it (a picture that already has the coarse structure needs no
        coarse optimization). 0 (the default): every level runs."""
        return 0

    @abc.abstractmethod
    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        """The start: an HxWx3 float32 RGB image in [0, 1] of ``shape`` (height, width).

        ``seed`` (None: draw a fresh one) makes a random start the same every run.
        """
