"""The images of one run: content, style images and optional semantic masks.

Loaded and checked together, because they must agree: one style mask per
style image, masks shaped like their images, blend weights for every style.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .images import fit_long_side, load_image, resize
from .masks import resize_nearest

PathLike = str | os.PathLike
#: An image given by path, or directly as an HxW or HxWx3/4 array (the Python API).
Source = PathLike | np.ndarray


def one_or_many(images) -> list:
    """``images`` as a list: one image (a path or an array) becomes a list of one."""
    return [images] if isinstance(images, (str, os.PathLike, np.ndarray)) else list(images)


def blend_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Style blend weights normalized to sum 1 (equal when not given)."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    return [w / sum(weights) for w in weights]


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


def load_inputs(content: Source, styles: Source | Sequence[Source], length: int, *, style_scale: float = 1.0,
                content_mask: Source | None = None, style_masks: Sequence[Source] | None = None,
                style_weights: Sequence[float] | None = None) -> Inputs:
    """Read the images and scale them: content to ``length``, styles to ``length * style_scale``.

    Each image is a path or an array (see ``read_image``).

    Masks are scaled to their image's size with nearest-neighbour sampling,
    so that no blended colours appear that the user did not paint. The
    images are checked together (``Inputs.check``) with ``style_weights``.
    """
    style_paths = one_or_many(styles)
    content_image = read_image(content)
    content_image = resize(content_image, fit_long_side(content_image.shape[:2], length))
    style_length = max(1, round(length * style_scale))
    style_images = []
    for path in style_paths:
        image = read_image(path)
        style_images.append(resize(image, fit_long_side(image.shape[:2], style_length)))
    inputs = Inputs(content_image, style_images)
    if content_mask is not None:
        inputs.content_mask = _load_mask(content_mask, content_image, content)
    if style_masks is not None:
        _check_mask_count(len(style_masks), len(style_images))
        inputs.style_masks = [_load_mask(m, s, p) for m, s, p in zip(style_masks, style_images, style_paths)]
    inputs.check(style_weights)
    return inputs


def read_image(source: Source) -> np.ndarray:
    """A path through ``load_image``; an array as HxWx3 float32 RGB in [0, 1].

    Arrays may be gray (HxW), RGB or RGBA (alpha composited on white, as
    ``load_image`` does), uint8/uint16 or float already in [0, 1].
    """
    if not isinstance(source, np.ndarray):
        return load_image(source)
    image = source
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape:
        raise UsageError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {source.shape}")
    if np.issubdtype(image.dtype, np.unsignedinteger) and image.dtype.itemsize <= 2:
        image = image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating) or image.dtype == bool:
        image = image.astype(np.float32)
        if not (np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0):
            raise UsageError("a float image array must hold values in [0, 1] (divide 8-bit values by 255)")
    else:
        raise UsageError(f"an image array must be uint8, uint16 or float in [0, 1], not {image.dtype}")
    if image.shape[2] == 4:
        image = image[..., :3] * image[..., 3:] + (1.0 - image[..., 3:])
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image, dtype=np.float32)


def _name(source: Source) -> str:
    return f"array {source.shape}" if isinstance(source, np.ndarray) else str(source)


def _check_mask_count(masks: int, styles: int) -> None:
    if masks != styles:
        raise UsageError(f"{masks} style masks for {styles} style images; "
                         "give one --style-mask per -s, in the same order")


#: How far a mask's aspect ratio may differ from its image's (rounding of resized files).
ASPECT_TOLERANCE = 0.02


def _load_mask(path: Source, image: np.ndarray, image_path: Source) -> np.ndarray:
    mask = read_image(path)
    (h, w), (mh, mw) = image.shape[:2], mask.shape[:2]
    if abs((mw / mh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise UsageError(f"mask {_name(path)} is {mw}x{mh} but its image {_name(image_path)} has another shape "
                         "(aspect ratio); a mask must cover its image exactly")
    return resize_nearest(mask, (h, w))
