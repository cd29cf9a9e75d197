"""Reading, scaling and writing images (Pillow), as HxWx3 float32 RGB in [0, 1].

Pillow is used rather than caffe.io (broken with current scikit-image) or
scikit-image's readers because it honours EXIF orientation, reads every
common format and mode, and writes PNG/JPEG with metadata.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .files import atomic_write

#: Output formats by file extension.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read any Pillow-readable image as RGB; transparent pixels become white."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img.alpha_composite(rgba)
            if img.mode.startswith("I") or img.mode == "F":
                rgb = _high_depth_gray(img)
            else:
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: cannot read image ({e})") from None
    return rgb


def _high_depth_gray(img: Image.Image) -> np.ndarray:
    """16-bit ("I;16", "I") or float ("F") grayscale as RGB in [0, 1].

    Pillow's ``convert("RGB")`` clips these modes at 255 instead of scaling
    them, which turns almost every pixel of a 16-bit image white.
    """
    gray = np.asarray(img, dtype=np.float32)
    if img.mode == "F":
        top = 1.0 if gray.size == 0 or np.nanmax(gray) <= 1.0 else 255.0
    else:  # I;16 variants are 16-bit; "I" is 16-bit data in practice when above 255
        top = 65535.0 if img.mode.startswith("I;16") or (gray.size and gray.max() > 255) else 255.0
    gray = np.clip(np.nan_to_num(gray / top), 0.0, 1.0).astype(np.float32)
    return np.repeat(gray[..., np.newaxis], 3, axis=-1)


def fit_long_side(shape: tuple[int, int], length: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer side is ``length``, aspect kept."""
    h, w = shape
    scale = length / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB float image to (height, width) with a high-quality filter."""
    if image.shape[:2] == tuple(size):
        return image
    h, w = size
    channels = [Image.fromarray(image[..., c], mode="F").resize((w, h), Image.Resampling.LANCZOS)
                for c in range(image.shape[2])]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=-1), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail before any work if ``path`` cannot receive an image."""
    path = Path(path)
    if path.is_dir():  # checked first: a folder named "x" is not a bad extension
        raise ImageError(f"{path}: is a directory; give a file name such as {path / 'out.png'}")
    if path.suffix.lower() not in FORMATS:
        raise ImageError(f"{path}: unsupported output extension; use one of {', '.join(FORMATS)}")
    return path


def save_image(image: np.ndarray, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename.

    A crash or a full disk never leaves a half-written image at ``path``.
    Parent folders are created. PNG files carry ``metadata`` as text chunks.
    """
    path = check_output_path(path)
    fmt = FORMATS[path.suffix.lower()]
    img = Image.fromarray(to_uint8(image), mode="RGB")
    options = {}
    if fmt == "PNG" and metadata:
        from PIL.PngImagePlugin import PngInfo
        info = PngInfo()
        for key, value in metadata.items():
            info.add_text(key, str(value))
        options["pnginfo"] = info
    elif fmt == "JPEG":
        options["quality"] = 95
    try:
        with atomic_write(path) as f:
            img.save(f, format=fmt, **options)
    except OSError as e:
        raise ImageError(f"{path}: cannot write image ({e.strerror or e})") from None
    return path
