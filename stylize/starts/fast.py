"""The feed-forward start (``--init fast``): a stylized picture in under a second, for the optimization to refine."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from stylize.core import Images, Option, StartImage, resize

from . import magenta


class Fast(StartImage):
    """A feed-forward picture: the content stylized by Magenta's arbitrary-style network (Ghiasi et al. 2017)."""

    options = (Option("level", int, 0, "The level it starts: 0 the coarsest (every level runs), 1 the next, ... "
                                       "-1 the finest; the coarser levels are skipped (their iterations not run)."),)

    def __init__(self, level: int = 0, **options):
        self.level = level

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        magenta.require()

    def first_level(self, levels: int) -> int:
        return self.level

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        """Blends mix the styles' embeddings by their weights; the 384 px picture is resized to ``shape``."""
        embedding = sum(w * magenta.style_embedding(s) for s, w in zip(images.styles, images.style_weights))
        return resize(magenta.transform(images.content, embedding), shape)
