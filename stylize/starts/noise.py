"""Pink noise as a start (the reference tool's numeric ``-i``): no image's layout, reproducible with a seed."""
from __future__ import annotations

import numpy as np

from stylize.core import Images, Option, StartImage


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


class Noise(StartImage):
    """Seeded pink noise (1/f spectrum): a start with no layout; --seed makes it the same every run."""

    options = (Option("exponent", float, 1.0,
                      "Spectrum exponent: 0 white noise, 1 pink (the default), 2 smoother blobs."),)

    def __init__(self, exponent: float = 1.0, **options):
        self.exponent = exponent

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return pink_noise(shape, self.exponent, np.random.default_rng(seed))
