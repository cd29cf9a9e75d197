"""The images of one run: content, style images and optional semantic masks.

Loaded and checked together, because they must agree: one style mask per
style image, masks shaped like their images, blend weights for every style.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import UsageError
from .images import fit_long_side, load_image, resize
from .masks import resize_nearest

Path = str | os.PathLike


@dataclass
class Inputs:
    """HxWx3 RGB images in [0, 1]: the content at output size, styles at their working size."""

    content: np.ndarray
    styles: list[np.ndarray]
    content_mask: np.ndarray | None = None
    style_masks: list[np.ndarray] | None = None

    def check(self, style_weights: Sequence[float] | None = None) -> None:
        """Refuse combinations that cannot work, before any network is loaded."""
        if not self.styles:
            raise UsageError("no style image; give one with -s")
        if style_weights is not None and len(style_weights) != len(self.styles):
            raise UsageError(f"{len(style_weights)} style weights for {len(self.styles)} style images; "
                             "give one weight per -s")
        if (self.content_mask is None) != (self.style_masks is None):
            raise UsageError("semantic masks need both --content-mask and --style-mask")
        if self.style_masks is not None:
            _check_mask_count(len(self.style_masks), len(self.styles))


def load_inputs(content: Path, styles: Path | Sequence[Path], length: int, *, style_scale: float = 1.0,
                content_mask: Path | None = None, style_masks: Sequence[Path] | None = None) -> Inputs:
    """Read the images and scale them: content to ``length``, styles to ``length * style_scale``.

    Masks are scaled to their image's size with nearest-neighbour sampling,
    so that no blended colours appear that the user did not paint.
    """
    style_paths = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    content_image = load_image(content)
    content_image = resize(content_image, fit_long_side(content_image.shape[:2], length))
    style_length = max(1, round(length * style_scale))
    style_images = []
    for path in style_paths:
        image = load_image(path)
        style_images.append(resize(image, fit_long_side(image.shape[:2], style_length)))
    inputs = Inputs(content_image, style_images)
    if content_mask is not None:
        inputs.content_mask = _load_mask(content_mask, content_image, content)
    if style_masks is not None:
        _check_mask_count(len(style_masks), len(style_images))
        inputs.style_masks = [_load_mask(m, s, p) for m, s, p in zip(style_masks, style_images, style_paths)]
    inputs.check()
    return inputs


def _check_mask_count(masks: int, styles: int) -> None:
    if masks != styles:
        raise UsageError(f"{masks} style masks for {styles} style images; "
                         "give one --style-mask per -s, in the same order")


#: How far a mask's aspect ratio may differ from its image's (rounding of resized files).
ASPECT_TOLERANCE = 0.02


def _load_mask(path: Path, image: np.ndarray, image_path: Path) -> np.ndarray:
    mask = load_image(path)
    (h, w), (mh, mw) = image.shape[:2], mask.shape[:2]
    if abs((mw / mh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise UsageError(f"mask {path} is {mw}x{mh} but its image {image_path} has another shape "
                         "(aspect ratio); a mask must cover its image exactly")
    return resize_nearest(mask, (h, w))
