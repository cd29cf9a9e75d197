"""An optimizer's image-shaped state fitted to the next, finer level: resized over its last two axes."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def resize_planes(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``array`` (..., h, w) resized bilinearly to ``shape`` (..., H, W), as float32.

    Bilinear, not the images' Lanczos: it keeps a non-negative array (Adam's
    second moment) non-negative and adds no ringing to a gradient average.
    """
    shape = tuple(int(d) for d in shape)
    if array.shape == shape:
        return np.asarray(array, np.float32)
    if array.shape[:-2] != shape[:-2]:
        raise ValueError(f"cannot fit state of shape {array.shape} to {shape}: only the last two axes may change")
    h, w = shape[-2:]
    planes = np.asarray(array, np.float32).reshape(-1, *array.shape[-2:])
    out = np.stack([np.asarray(Image.fromarray(plane, mode="F").resize((w, h), Image.Resampling.BILINEAR))
                    for plane in planes])
    return out.reshape(shape)
