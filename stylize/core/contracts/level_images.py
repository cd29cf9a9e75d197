"""The run's images at one level's resolution, as losses and starts receive them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .features import Features


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
