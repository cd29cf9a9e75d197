"""Loss ``meanstd``: match each channel's mean and standard deviation (AdaIN statistics)."""
from __future__ import annotations

import numpy as np

from stylize.core import Features, Loss, Option


def channel_stats(features: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of CxHxW features, in float64.

    ``sqrt(variance + eps)`` keeps the gradient finite for constant (dead
    ReLU) channels.
    """
    mean = features.mean(axis=(1, 2), dtype=np.float64)
    var = np.square(features - mean[:, None, None].astype(features.dtype), dtype=np.float64).mean(axis=(1, 2))
    return mean, np.sqrt(var + eps)


class MeanStdLoss(Loss):
    """Style as per-channel feature mean and standard deviation (Huang & Belongie 2017), not Gram matrices.

    The statistics that adaptive instance normalization (AdaIN) transfers:
    for N channels with means mu, deviations sigma, and the style's mu', sigma',

        E_l = tr(A_l) / (4 N^2) * sum_c [(mu_c - mu'_c)^2 + (sigma_c - sigma'_c)^2]

    summed over the style layers with their ``layer_weights`` (equal unless
    the user gives weights), where tr(A_l) / N = mean_c(mu'_c^2 + sigma'_c^2)
    is the mean diagonal of the style's normalized Gram matrix. That factor
    (fixed by the target) gives the term the Gram loss's units, so the same
    ``--ratio`` means a similar strength: measured on VGG19 at 128 px (two
    paintings against three photos) the term is 1.0 to 1.9 times ``gram``'s
    (0.7 to 3.7 times at single layers).

    Compared with ``gram`` it costs O(N M) instead of O(N^2 M) per layer,
    ignores channel correlations (a looser, smoother notion of style that keeps
    more of the photo's structure), and is not quartic in the features, so
    its curvature does not explode far from the target.

    Options: ``eps`` (default 1e-5), added to the variance.
    """

    role = "style"
    # What --set meanstd.KEY=VALUE may give besides weight and layers; other keys are refused.
    options = (Option("eps", float, 1e-5, "Added to each channel's variance (keeps dead channels finite)."),)

    def __init__(self, layers, eps: float = 1e-5, **options):
        super().__init__(layers, **options)  # sets self.layers and self.layer_weights
        self.eps = float(eps)

    def set_target(self, features: Features) -> None:
        self.targets = {}
        for layer in self.layers:
            mean, std = channel_stats(features[layer], self.eps)
            scale = float(np.mean(mean ** 2 + std ** 2)) / (4.0 * len(mean))
            self.targets[layer] = (mean, std, scale)

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = 0.0, {}
        for layer in self.layers:
            share = self.layer_weights[layer]
            f = features[layer]
            target_mean, target_std, scale = self.targets[layer]
            mean, std = channel_stats(f, self.eps)
            d_mean, d_std = mean - target_mean, std - target_std
            value += share * scale * float(d_mean @ d_mean + d_std @ d_std)
            # d mean_c / dF = 1/M;  d std_c / dF = (F - mean_c) / (M std_c).
            m = f[0].size
            coef = 2.0 * share * scale / m
            a = (coef * d_mean).astype(f.dtype)[:, None, None]
            b = (coef * d_std / std).astype(f.dtype)[:, None, None]
            grads[layer] = a + b * (f - mean.astype(f.dtype)[:, None, None])
        return value, grads
