"""Matched regions of a content and a style photo without a segmentation model (issue 28, item 4).

Luan et al. restrict each region of the output (sky, building, water) to the
Gram of the same region of the style, from masks a segmentation network
draws. Here the regions come from the photos themselves: VGG19 features at
``LAYER`` (what a thing is) and CIELAB colour (how it is lit), both at a
quarter of the image's resolution, are clustered by k-means over the content's
and the style's positions *together*, so a cluster is one kind of region in
both photos and the regions are matched by construction. The result is a
pair of colour-coded masks, exactly what ``--content-mask`` / ``--style-mask``
take, fed to the existing per-region Gram terms (stylize/core/io/masks.py).
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.ndimage import zoom

from stylize.core import plugins
from stylize.core.io.images import resize
from stylize.core.io.masks import resize_nearest
from stylize.starts.colour import rgb_to_lab

#: The layer whose features say what a region is, and their principal components kept.
LAYER, COMPONENTS = "conv4_1", 8
#: Clustering grid: a quarter of the image's resolution.
SHRINK = 4
#: Region colours of the masks, far apart beyond ``masks.TOLERANCE``.
PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0]],
                   np.float32)


def _descriptors(backend, image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Per position of ``grid``: the layer's features (upsampled) and Lab colour, (positions, C + 3)."""
    features = backend.forward(backend.preprocess(image), [LAYER])[LAYER]
    deep = zoom(features, (1, grid[0] / features.shape[1], grid[1] / features.shape[2]), order=1, grid_mode=True,
                mode="nearest")
    return np.concatenate([deep.reshape(features.shape[0], -1).T,
                           rgb_to_lab(resize(image, grid)).reshape(-1, 3)], axis=1)


def matched_masks(content: np.ndarray, style: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Colour-coded masks (HxWx3, one PALETTE colour per region) of ``content`` and ``style``, k regions shared."""
    backend = plugins.load("stylize.backends", "caffe-vgg19")([LAYER], gpu=-1, precision="fp32")
    grids = [(max(1, image.shape[0] // SHRINK), max(1, image.shape[1] // SHRINK)) for image in (content, style)]
    both = [_descriptors(backend, image, grid) for image, grid in zip((content, style), grids)]
    joined = np.concatenate(both)
    deep, colour = joined[:, :-3], joined[:, -3:]
    deep = deep - deep.mean(axis=0)
    _, _, axes = np.linalg.svd(deep[:: max(1, len(deep) // 4000)], full_matrices=False)
    deep = deep @ axes[:COMPONENTS].T
    colour = colour - colour.mean(axis=0)
    # Each kind of cue weighs the same: its total variance scaled to 1.
    points = np.concatenate([deep / np.sqrt(deep.var(axis=0).sum()), colour / np.sqrt(colour.var(axis=0).sum())],
                            axis=1)
    _, labels = kmeans2(points, k, seed=seed, minit="++")
    split = len(both[0])
    masks = []
    for image, grid, part in zip((content, style), grids, (labels[:split], labels[split:])):
        coded = PALETTE[part].reshape(*grid, 3)
        masks.append(resize_nearest(coded, image.shape[:2]))
    return masks[0], masks[1]
