"""What exact tiled evaluation asks of plugins: a network's Tiling, a core's Window, a loss's TiledLoss methods."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .features import Features


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
