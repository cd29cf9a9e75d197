"""Starting images: the content, the style, seeded pink noise, or a file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UsageError
from .images import load_image, resize

#: The values ``--init`` accepts besides an image path.
NAMED = ("content", "style", "noise")


def pink_noise(shape: tuple[int, int], exponent: float, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 noise with a 1/f^exponent spectrum, scaled into [0, 1] (the reference's init)."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = np.fft.rfft2(rng.standard_normal((h, w))) / f ** exponent
        c = np.fft.irfft2(spectrum, s=(h, w))
        channels.append((c - c.min()) / (np.ptp(c) or 1.0))
    return np.stack(channels, axis=-1).astype(np.float32)


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int | None) -> np.ndarray:
    """The first image of the coarsest level, at the content's size.

    Noise without a seed draws a fresh one; with ``seed`` the same noise (and
    so, on the same machine and thread count, the same output) every run.
    """
    if init == "content":
        return content
    if init == "style":
        return resize(style, content.shape[:2])
    if init == "noise":
        return pink_noise(content.shape[:2], 1.0, np.random.default_rng(seed))
    path = Path(init)
    if not path.exists():
        raise UsageError(f"--init {init!r}: not {', '.join(NAMED)} or an existing image")
    return resize(load_image(path), content.shape[:2])
