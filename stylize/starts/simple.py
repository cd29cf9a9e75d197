"""The content and the style as starts: the optimization begins from one of the run's own images."""
from __future__ import annotations

import numpy as np

from stylize.core import Images, StartImage, resize


class Content(StartImage):
    """The content image (the default): the picture's layout is there from the first iteration."""

    options = ()

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(images.content, shape)


class Style(StartImage):
    """The first style image, stretched to the output's shape: the content must then be optimized in."""

    options = ()

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(images.styles[0], shape)
