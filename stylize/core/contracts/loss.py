"""The Loss contract: one weighted term of the objective, its value and gradient computed on features."""
from __future__ import annotations

import abc
from typing import ClassVar, Mapping, Sequence

import numpy as np

from .features import Features
from .level_images import Images, StyleTarget
from .options import Option


class Loss(abc.ABC):
    """One weighted term of the objective, computed on features.

    ``role`` says which image provides the target and what the loss reads:

    - ``"content"``: features of ``self.layers``; target from the content image.
    - ``"style"``: features of ``self.layers``; target from the style image.
    - ``"image"``: the output image itself, HxWx3 RGB in [0, 1], under the
      key ``IMAGE``; its target is the content image under the same key.
      ``self.layers`` is empty. Its weight is ``default_weight`` per
      512x512 pixels (see ``stylize.core.evaluation.objective.content_weight``).
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

    def set_images(self, images: Images) -> None:
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

    def set_style_targets(self, styles: Sequence[StyleTarget], regions: np.ndarray | None) -> None:
        """Receive every style image's features (style-role losses), once per resolution.

        ``regions`` (RxHxW, in [0, 1], at the output's resolution) says where
        each semantic region lies in the output; each ``StyleTarget`` carries
        the same regions for its own image. Regions and several style images
        need a loss that understands them; the default accepts exactly one
        style image without regions, so simple style losses need only
        ``set_target``.
        """
        if len(styles) != 1 or regions is not None or styles[0].regions is not None:
            from ..errors import UsageError
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
