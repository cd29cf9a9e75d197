"""Total variation: a smoothness prior on the output image (Mahendran & Vedaldi 2015)."""
from __future__ import annotations

import numpy as np

from stylize.core import IMAGE, Features, Loss, squared_norm


class TotalVariationLoss(Loss):
    """E = sum of squared differences between neighbouring pixels (RGB in [0, 1]).

    Suppresses the high-frequency speckle that Gram losses leave, especially
    with max pooling. Squared (beta = 2) rather than absolute differences keep
    the objective smooth for L-BFGS.
    """

    role = "image"
    default_weight = 1e4
    options = ()

    def set_target(self, features: Features) -> None:
        """TV needs no target."""

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        image = features[IMAGE]
        dy = np.diff(image, axis=0)
        dx = np.diff(image, axis=1)
        value = squared_norm(dy) + squared_norm(dx)
        grad = np.zeros_like(image)
        grad[:-1] -= 2 * dy
        grad[1:] += 2 * dy
        grad[:, :-1] -= 2 * dx
        grad[:, 1:] += 2 * dx
        return value, {IMAGE: grad}
