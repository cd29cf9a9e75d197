"""Optical flow between consecutive frames, its reliability, and warping by it (Ruder et al. 2016).

The temporal loss compares frame i's output with frame i-1's output carried
into frame i along the motion. That needs, for every pixel x of frame i,
where it was in frame i-1: the *backward* flow b (x in frame i sits at
x + b(x) in frame i-1). Where that answer cannot be trusted (the pixel was
hidden in frame i-1, or lies on a motion boundary where flow is smeared)
the loss must not pull, so the *forward* flow f (frame i-1 to frame i) is
also computed and the two are checked against each other, with the paper's
thresholds. OpenCV's DIS (Kroeger et al. 2016) gives dense flow in
milliseconds per frame on a CPU, accurate enough for this check.
"""
from __future__ import annotations

import numpy as np

#: The paper's forward-backward consistency rule: |f~ + b|^2 > A (|f~|^2 + |b|^2) + B is a disocclusion.
CONSISTENCY = (0.01, 0.5)
#: The paper's motion-boundary rule: |grad u|^2 + |grad v|^2 > A |b|^2 + B is a boundary.
BOUNDARY = (0.01, 0.002)


def _cv2():
    import cv2  # imported when flow is needed: `stylize --help` and the image commands never load OpenCV

    return cv2


def gray8(image: np.ndarray) -> np.ndarray:
    """HxWx3 float RGB in [0, 1] -> HxW uint8 luminance, what DIS reads."""
    luminance = image[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return (np.clip(luminance, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """HxWx2 float32 flow (dx, dy) such that pixel x of ``source`` is at x + flow(x) in ``target``.

    DIS with OpenCV's "medium" preset, refined down to full resolution
    (finest scale 0; the preset stops at half): on a 32 px object moving
    5 px the preset's flow is off by 2 px inside the object, full resolution
    by a hundredth, for about four times the time (milliseconds at 256 px).
    """
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    return dis.calc(gray8(source), gray8(target), None).astype(np.float32)


def warp(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """``image`` (frame i-1, HxWxC) carried into frame i: out(x) = image(x + backward(x)), bilinear.

    Pixels that would come from outside the frame take the nearest edge
    pixel; the reliability mask gives them weight 0 anyway.
    """
    cv2 = _cv2()
    h, w = backward.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mapped = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), xs + backward[..., 0],
                       ys + backward[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return mapped.reshape(image.shape)


def reliability(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """HxW float32 weights c for frame i: 0 at disocclusions and motion boundaries, 1 elsewhere.

    ``forward`` is frame i-1 -> i, ``backward`` frame i -> i-1. As in the
    paper (section 3.1), forward flow is brought into frame i along the
    backward flow, f~(x) = f(x + b(x)); where x was visible in frame i-1 the
    two cancel. A pixel whose backward flow leaves the frame came from
    outside it, a disocclusion too.
    """
    h, w = backward.shape[:2]
    carried = warp(forward, backward)
    a, b = CONSISTENCY
    mismatch = np.sum((carried + backward) ** 2, axis=-1)
    disoccluded = mismatch > a * (np.sum(carried ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)) + b
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    px, py = xs + backward[..., 0], ys + backward[..., 1]
    # Half a pixel of slack: a pixel on the border whose flow points a hair outside is still seen.
    outside = (px < -0.5) | (px > w - 0.5) | (py < -0.5) | (py > h - 0.5)
    gu_y, gu_x = np.gradient(backward[..., 0])
    gv_y, gv_x = np.gradient(backward[..., 1])
    a, b = BOUNDARY
    boundary = gu_x ** 2 + gu_y ** 2 + gv_x ** 2 + gv_y ** 2 > a * np.sum(backward ** 2, axis=-1) + b
    return (~(disoccluded | outside | boundary)).astype(np.float32)


def warping_error(current: np.ndarray, previous: np.ndarray, backward: np.ndarray,
                  mask: np.ndarray) -> float:
    """Mean squared difference between ``current`` and ``previous`` warped into it, over reliable pixels.

    The consistency measure of the paper's evaluation: a flickering
    stylization changes where the scene does not.
    """
    diff = (current - warp(previous, backward)) ** 2
    weight = mask.sum() * current.shape[-1]
    return float((diff * mask[..., None]).sum() / weight) if weight else 0.0
