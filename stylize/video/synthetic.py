"""Generated clips with known motion, for tests, the benchmark and the README's animation.

A camera pan over a still image (every pixel moves by the same known
step, new content enters at one edge) and, optionally, a patch of another
image gliding across it (an object that hides and uncovers the
background): the two cases the reliability mask must tell apart.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from stylize.core.io.images import fit_long_side, resize, to_uint8


def pan(image: np.ndarray, count: int, length: int, step: float = 2.0,
        sprite: np.ndarray | None = None, sprite_step: float = 3.0) -> list[np.ndarray]:
    """``count`` frames of a window whose long side is ``length`` px panning right over ``image``.

    The window's content moves left by ``step`` px per frame; ``sprite``
    (an image, a quarter of the window high) crosses the window at
    ``sprite_step`` px per frame relative to it.
    """
    travel = step * (count - 1)
    h, w = image.shape[:2]
    wh, ww = fit_long_side((h, w), length)
    scale = min(h / wh, (w - 1) / (ww + travel + 2))  # source pixels per frame pixel; the pan must fit
    big = resize(image, (int(h / scale), int(w / scale)))
    small = None if sprite is None else resize(sprite, fit_long_side(sprite.shape[:2], wh // 4))
    frames = []
    for index in range(count):
        x = index * step
        x0 = int(np.floor(x))
        frac = x - x0
        window = (1 - frac) * big[:wh, x0:x0 + ww] + frac * big[:wh, x0 + 1:x0 + ww + 1]
        if small is not None:
            sh, sw = small.shape[:2]
            left = int(round(ww // 8 + index * sprite_step))
            top = (wh - sh) // 2
            visible = max(0, min(sw, ww - left))
            window[top:top + sh, left:left + visible] = small[:, :visible]
        frames.append(window.astype(np.float32))
    return frames


def write_clip(frames: Sequence[np.ndarray], path: str | Path, fps: float = 12.0, audio: bool = False) -> Path:
    """Encode ``frames`` into the video ``path`` (H.264 in MP4/MKV) with FFmpeg; ``audio`` adds a 440 Hz tone."""
    from .frames import ffmpeg

    h, w = frames[0].shape[:2]
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "-"]
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={len(frames) / fps:.3f}",
                    "-c:a", "aac", "-shortest"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "0", "-preset", "ultrafast", str(path)]
    data = b"".join(to_uint8(frame).tobytes() for frame in frames)
    subprocess.run(command, input=data, check=True, capture_output=True)
    return Path(path)
