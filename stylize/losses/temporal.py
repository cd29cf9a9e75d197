"""Temporal consistency for video (Ruder, Dosovitskiy and Brox 2016): stay where the last frame's output went."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from stylize.core import IMAGE, Features, ImageError, Images, Loss, Option, UsageError

#: The paper's temporal-to-content weight ratio gamma / alpha (200 / 1).
PAPER_RATIO = 200.0
#: gamma in stylize's units. The paper's terms are means: content over the C*H*W
#: features of conv4_2 (8 H W values for VGG at stride 8), temporal over the 3 H W
#: pixels in 0..255. stylize's content term is 1/2 of the sum, times 512^2/(H W),
#: and this term a sum over [0, 1] pixels, times the same area factor. Equating
#: the two ratios gives weight = gamma * 255^2 * 8 / (2 * 3) = 86700 gamma.
PAPER_WEIGHT = PAPER_RATIO * 255.0 ** 2 * 8 / (2 * 3)


class TemporalLoss(Loss):
    """Temporal consistency: E = sum c (x - w)^2 with w the previous output warped into this frame (videos).

    Ruder et al.'s short-term temporal loss (section 3.1). ``w`` (option
    ``previous``, an image file) is frame i-1's stylized output carried
    into frame i along the optical flow, and ``c`` (option ``mask``, a
    grayscale image, white = 1) is the flow's reliability: 0 where frame i
    shows what frame i-1 hid (disocclusions) and at motion boundaries, so
    the term pulls only where the previous output says something true about
    this frame. Both are read once and scaled to each coarse-to-fine level.
    ``stylize video`` writes them for every frame; ``stylize run --loss
    temporal --set temporal.previous=warped.png --set temporal.mask=mask.png``
    uses them by hand.

    Weight (an image term: per 512x512 pixels, like ``tv``): the default
    1.73e7 is the paper's gamma / alpha = 200 translated to stylize's units
    (``PAPER_WEIGHT``), so that against the content term it pulls as hard
    as in the paper; ``--set temporal.weight=`` changes it.
    """

    role = "image"
    default_weight = PAPER_WEIGHT
    options = (
        Option("previous", str, None, "The previous frame's output warped into this frame (an image file).",
               path=True),
        Option("mask", str, None, "Reliability of the warp per pixel: a grayscale image, white = 1, black = 0 "
               "(default: 1 everywhere).", path=True),
    )

    def __init__(self, layers, previous: str | None = None, mask: str | None = None, **options):
        super().__init__(layers, **options)
        self.previous = None if previous is None else _read(previous, "RGB")
        self.mask = None if mask is None else _read(mask, "L")
        if self.previous is not None and self.mask is not None and \
                self.previous.shape[:2] != self.mask.shape[:2]:
            raise UsageError(f"temporal.mask {mask} is {self.mask.shape[1]}x{self.mask.shape[0]} but "
                             f"temporal.previous {previous} is {self.previous.shape[1]}x{self.previous.shape[0]}")
        self.target = self.weights = None

    def set_images(self, images: Images) -> None:
        """The previous output and its mask at this level's size (the content image's)."""
        if self.previous is None:
            raise UsageError("loss 'temporal' needs the previous frame's output warped into this one: "
                             "--set temporal.previous=IMAGE (`stylize video` gives it)")
        shape = images.content.shape[:2]
        self.target = _resized(self.previous, shape)
        weights = np.ones(shape, np.float32) if self.mask is None else _resized(self.mask, shape)
        self.weights = np.clip(weights, 0.0, 1.0)[..., None]

    def set_target(self, features: Features) -> None:
        """The target is the previous output (``set_images``), not the content image."""

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        image = features[IMAGE]
        diff = image - self.target.astype(image.dtype)
        weighted = diff * self.weights.astype(image.dtype)
        value = float(np.einsum("i,i->", diff.ravel(), weighted.ravel(), dtype=np.float64))
        weighted *= 2  # the gradient, 2 c (x - w), in a fresh array
        return value, {IMAGE: weighted}


def _read(path: str, mode: str) -> np.ndarray:
    """An image file as float32 in [0, 1]: HxWx3 for ``RGB``, HxW for ``L``; ImageError if unreadable."""
    try:
        with Image.open(Path(path)) as image:
            pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot read the temporal loss's image ({e})") from None
    return pixels


def _resized(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if pixels.shape[:2] == tuple(shape):
        return pixels
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., c]), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR)) for c in range(channels.shape[-1])]
    stacked = np.stack(out, axis=-1)
    return stacked[..., 0] if pixels.ndim == 2 else stacked
