"""Content loss (Gatys et al.): half the squared error between feature maps."""
from __future__ import annotations

import numpy as np

from stylize.core import Features, Loss, TiledLoss, Windows, squared_norm


class ContentLoss(Loss, TiledLoss):
    """E = 1/2 * sum((F - P)^2) per layer, averaged over its layers (``layer_weights``).

    Keeping the raw sum (not a mean) matches the paper and the reference
    tool, so that the reference's style-to-content ratio 1e4 means the same.
    Tiled (``TiledLoss``), a core's statistic is its part of the sum, and
    its gradient needs only the core's part of the target.
    """

    role = "content"
    options = ()

    def set_target(self, features: Features) -> None:
        self.targets = {layer: np.array(features[layer], dtype=np.float32) for layer in self.layers}

    def _differences(self, features: Features, windows: Windows | None):
        for layer in self.layers:
            target = self.targets[layer] if windows is None else windows[layer].crop(self.targets[layer])
            yield layer, features[layer] - target

    def tile_statistics(self, features: Features, windows: Windows) -> dict[str, np.ndarray]:
        return {layer: np.float64(0.5 * squared_norm(diff)) for layer, diff in self._differences(features, windows)}

    def tile_value(self, totals) -> float:
        return sum(self.layer_weights[layer] * float(totals[layer]) for layer in self.layers)

    def tile_gradient(self, features: Features, windows: Windows, totals) -> dict[str, np.ndarray]:
        return {layer: self._gradient(layer, diff) for layer, diff in self._differences(features, windows)}

    def _gradient(self, layer: str, diff: np.ndarray) -> np.ndarray:
        diff *= np.float32(self.layer_weights[layer])  # in place: no second feature-sized array
        return diff

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = 0.0, {}
        for layer, diff in self._differences(features, None):
            value += self.layer_weights[layer] * 0.5 * squared_norm(diff)
            grads[layer] = self._gradient(layer, diff)
        return value, grads
