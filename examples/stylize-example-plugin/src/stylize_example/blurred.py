"""The blurred start: a third party's ``stylize.starts`` plugin (``--init blurred``)."""
from __future__ import annotations

import numpy as np

from stylize.core import Images, Option, StartImage, resize


def box_blur(image: np.ndarray, radius: int, passes: int = 3) -> np.ndarray:
    """``passes`` box filters of width 2 * radius + 1 along each axis (close to a Gaussian), edges repeated."""
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(0, 0)] * image.ndim
            pad[axis] = (radius + 1, radius)
            sums = np.cumsum(np.pad(image, pad, mode="edge"), axis=axis, dtype=np.float64)
            n = image.shape[axis]
            upper = np.take(sums, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
            lower = np.take(sums, np.arange(0, n), axis=axis)
            image = ((upper - lower) / (2 * radius + 1)).astype(np.float32)
    return image


class Blurred(StartImage):
    """The content blurred: its layout and colours without its fine texture, for the style to paint in."""

    options = (Option("radius", int, 4, "Blur radius in pixels at the start's size (0: the content as is)."),)

    def __init__(self, radius: int = 4, **options):
        self.radius = radius

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        content = resize(images.content, shape)
        return np.clip(box_blur(content, self.radius), 0.0, 1.0) if self.radius > 0 else content
