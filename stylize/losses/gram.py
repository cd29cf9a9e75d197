"""Gram-matrix style loss (Gatys et al.), averaged over the style layers."""
from __future__ import annotations

import numpy as np

from stylize.core import Features, Loss, squared_norm


def gram(features: np.ndarray) -> np.ndarray:
    """Normalized Gram matrix F F^T / M of CxHxW features (M = H*W positions).

    Dividing by M makes Gram matrices of images of different sizes comparable,
    so the style image need not have the output's size.
    """
    f = features.reshape(features.shape[0], -1)
    return (f @ f.T) / np.float32(f.shape[1])


class GramLoss(Loss):
    """E_l = 1/(4 N^2) * sum((G_l - A_l)^2) with normalized Grams (N channels).

    This equals the paper's 1/(4 N^2 M^2) * sum((F F^T - S S^T)^2) with the
    style's Gram taken at its own size. Layers are weighted by ``layer_weights`` (equal by default).
    """

    role = "style"

    def set_target(self, features: Features) -> None:
        self.targets = {layer: gram(features[layer]) for layer in self.layers}

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = 0.0, {}
        for layer in self.layers:
            share = self.layer_weights[layer]
            f = features[layer]
            n, m = f.shape[0], f[0].size
            diff = gram(f) - self.targets[layer]
            value += share * squared_norm(diff) / (4.0 * n * n)
            # dE/dF = 1/(N^2 M) * (G - A) F, since d(F F^T/M) contributes twice.
            grad = (diff @ f.reshape(n, m)) * np.float32(share / (n * n * m))
            grads[layer] = grad.reshape(f.shape)
        return value, grads
