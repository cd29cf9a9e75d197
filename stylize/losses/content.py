"""Content loss (Gatys et al.): half the squared error between feature maps."""
from __future__ import annotations

import numpy as np

from stylize.core import Features, Loss, squared_norm


class ContentLoss(Loss):
    """E = 1/2 * sum((F - P)^2) per layer, averaged over its layers (``layer_weights``).

    Keeping the raw sum (not a mean) matches the paper and the reference
    tool, so that the reference's style-to-content ratio 1e4 means the same.
    """

    role = "content"
    options = ()

    def set_target(self, features: Features) -> None:
        self.targets = {layer: np.array(features[layer], dtype=np.float32) for layer in self.layers}

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = 0.0, {}
        for layer in self.layers:
            share = self.layer_weights[layer]
            diff = features[layer] - self.targets[layer]
            value += share * 0.5 * squared_norm(diff)
            diff *= np.float32(share)  # in place: no second feature-sized array
            grads[layer] = diff
        return value, grads
