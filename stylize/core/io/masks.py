"""Semantic masks: colour-coded segmentation images turned into region masks.

A user paints (or a segmentation tool writes) one image per photo in which
each region has its own flat colour: sky blue, building red. The same colour
in the content mask and a style mask means "style this region of the output
like that region of the painting" (Luan et al. 2017, after Champandard 2016).

Masks are often saved as JPEG, so colours drift by a few levels inside a
region and blend at its edges. The palette is therefore found from colours
that cover a real share of some mask, merged when closer than a tolerance,
and every pixel joins the nearest palette colour.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import UsageError

#: Default distance (in 0..255 RGB units) under which two mask colours are one region.
TOLERANCE = 40.0
#: A colour is a region when it covers at least this share of some mask's pixels.
MIN_SHARE = 0.002
#: Colours are counted in bins of this width first, so JPEG noise lands in one bin.
BIN = 8


def palette(masks: Sequence[np.ndarray], tolerance: float = TOLERANCE) -> np.ndarray:
    """The region colours (Kx3, 0..255) used by ``masks`` (HxWx3 images in [0, 1]).

    Most frequent colours first; a colour closer than ``tolerance`` to one
    already taken is JPEG noise or an anti-aliased edge of that region.
    """
    counts: dict[tuple[int, ...], float] = {}
    for mask in masks:
        rgb = np.asarray(mask, np.float32) * 255.0
        flat = rgb[_flat_pixels(rgb, tolerance / 2)]
        binned = np.rint(flat / BIN).astype(np.int32)
        colours, n = np.unique(binned, axis=0, return_counts=True)
        share = n / float(rgb.shape[0] * rgb.shape[1])
        for colour, s in zip(map(tuple, colours[share >= MIN_SHARE]), share[share >= MIN_SHARE]):
            counts[colour] = max(counts.get(colour, 0.0), float(s))
    taken: list[np.ndarray] = []
    for colour in sorted(counts, key=counts.get, reverse=True):
        centre = np.minimum(np.array(colour, np.float32) * BIN, 255.0)
        if all(np.linalg.norm(centre - t) > tolerance for t in taken):
            taken.append(centre)
    if not taken:
        raise UsageError("the masks have no colour covering a region; paint each region in one flat colour")
    return np.stack(taken)


def _flat_pixels(rgb: np.ndarray, spread: float) -> np.ndarray:
    """HxW booleans: pixels whose 3x3 neighbourhood stays within ``spread`` of them.

    Region interiors are flat; JPEG blends two regions' colours only along
    their edges, so counting interiors alone keeps blends out of the palette.
    """
    h, w, _ = rgb.shape
    padded = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    largest = np.zeros((h, w), np.float32)
    for dy in range(3):
        for dx in range(3):
            step = np.abs(padded[dy:dy + h, dx:dx + w] - rgb).max(axis=2)
            np.maximum(largest, step, out=largest)
    return largest <= spread


def regions(mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """KxHxW one-hot float32 masks: each pixel of ``mask`` in the region of its nearest colour."""
    pixels = np.asarray(mask, np.float32).reshape(-1, 3) * 255.0
    distance = ((pixels[:, None, :] - colours[None, :, :]) ** 2).sum(axis=2)
    nearest = distance.argmin(axis=1)
    one_hot = np.zeros((len(colours), pixels.shape[0]), np.float32)
    one_hot[nearest, np.arange(pixels.shape[0])] = 1.0
    return one_hot.reshape(len(colours), *mask.shape[:2])


def resize_regions(masks: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """KxHxW soft masks resized to ``shape`` (h, w) by area averaging, so edges stay soft."""
    h, w = int(shape[0]), int(shape[1])
    if masks.shape[1:] == (h, w):
        return masks
    return np.stack([np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.Resampling.BILINEAR))
                     for m in masks]).clip(0.0, 1.0).astype(np.float32)


def resize_nearest(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """An HxWx3 mask image at ``shape`` without new, blended colours."""
    h, w = int(shape[0]), int(shape[1])
    rows = np.minimum((np.arange(h) + 0.5) * mask.shape[0] / h, mask.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(w) + 0.5) * mask.shape[1] / w, mask.shape[1] - 1).astype(int)
    return mask[rows][:, cols]


def split_regions(content_mask: np.ndarray, style_masks: Sequence[np.ndarray],
                  tolerance: float = TOLERANCE) -> tuple[np.ndarray, list[np.ndarray]]:
    """Region masks of the content and of each style image, over one shared palette.

    Regions are the colours present in the content mask; a style mask's other
    colours are ignored, and a content region that no style mask has gets no
    style term (it keeps to its content).
    """
    colours = palette([content_mask, *style_masks], tolerance)
    content_regions = regions(content_mask, colours)
    present = content_regions.reshape(len(colours), -1).any(axis=1)
    return content_regions[present], [regions(m, colours)[present] for m in style_masks]
