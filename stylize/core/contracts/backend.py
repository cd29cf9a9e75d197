"""The Backend contract: a frozen network that describes an image at named layers, forward and backward."""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from .features import Features
from .options import Option
from .tiled import Tiling


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

    def tiling(self, layers: Sequence[str]) -> Tiling | None:
        """How ``layers``' features line up with the input, so that the objective can be evaluated
        tile by tile with the whole image's result (``stylize.core.evaluation.tiling``); None (the default):
        this network cannot be tiled, the image is always evaluated whole."""
        return None
