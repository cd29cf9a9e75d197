"""Output formats: the extensions stylize writes, the bits per channel each holds, and its encoder.

The optimizer's image is float32, finer than any file; it is quantized
once, here, to the bit depth asked for (``Settings.bit_depth``), so a
16-bit output really carries 65,536 levels per channel (smooth skies and
gradients keep no banding through later editing).

- 8 bits, PNG and JPEG: Pillow, as stylize always wrote them (PNG with its
  text metadata, JPEG at quality 95).
- 16-bit PNG: Pillow has no 16-bit RGB mode, so OpenCV (already installed
  for ``stylize video``) encodes it, and ``png_text`` adds the metadata,
  which OpenCV does not write.
- TIFF, 8 or 16 bits: tifffile (deflate with a horizontal predictor,
  lossless), with the metadata as JSON in the ImageDescription tag; neither
  Pillow (no 16-bit RGB) nor OpenCV (no description) can do both.
"""
from __future__ import annotations

import io
import json
from typing import Mapping

import numpy as np

from ..errors import UsageError

#: Output formats by file extension.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
#: Bits per channel each format can hold; the first is the default.
DEPTHS = {"PNG": (8, 16), "JPEG": (8,), "TIFF": (8, 16)}
#: Every bit depth stylize writes.
BIT_DEPTHS = (8, 16)


def quantize(image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """[0, 1] floats as unsigned integers of ``bit_depth`` bits: clipped, then rounded to the nearest level."""
    top = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth <= 8 else np.uint16
    return (np.clip(image, 0.0, 1.0) * np.float32(top) + np.float32(0.5)).astype(dtype)


def check_bit_depth(what: str, fmt: str, bit_depth: int) -> None:
    """UsageError unless ``fmt`` holds ``bit_depth`` bits per channel; ``what`` (a path) starts the message."""
    if bit_depth not in BIT_DEPTHS:
        raise UsageError(f"bit depth must be one of {', '.join(map(str, BIT_DEPTHS))}, got {bit_depth}")
    if bit_depth not in DEPTHS[fmt]:
        able = ", ".join(ext for ext, f in FORMATS.items() if bit_depth in DEPTHS[f])
        raise UsageError(f"{what}: {fmt} holds at most {max(DEPTHS[fmt])} bits per channel, not {bit_depth}; "
                         f"write {able} for --bit-depth {bit_depth}")


def encode(image: np.ndarray, fmt: str, bit_depth: int = 8, metadata: Mapping[str, str] | None = None) -> bytes:
    """The file bytes of an HxWx3 RGB float image in ``fmt`` (a FORMATS value) at ``bit_depth`` bits."""
    check_bit_depth(f"a {fmt} file", fmt, bit_depth)
    pixels = quantize(image, bit_depth)
    metadata = {key: str(value) for key, value in (metadata or {}).items()}
    if fmt == "TIFF":
        return _tiff(pixels, metadata)
    if bit_depth == 16:
        return _png16(pixels, metadata)
    return _pillow(pixels, fmt, metadata)


def _pillow(pixels: np.ndarray, fmt: str, metadata: dict[str, str]) -> bytes:
    from PIL import Image
    options = {}
    if fmt == "PNG" and metadata:
        from PIL.PngImagePlugin import PngInfo
        info = PngInfo()
        for key, value in metadata.items():
            info.add_text(key, value)
        options["pnginfo"] = info
    elif fmt == "JPEG":
        options["quality"] = 95
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png16(pixels: np.ndarray, metadata: dict[str, str]) -> bytes:
    import cv2

    from . import png_text
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))  # OpenCV's order is BGR
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit PNG")
    return png_text.with_text(encoded.tobytes(), metadata)


def _tiff(pixels: np.ndarray, metadata: dict[str, str]) -> bytes:
    import tifffile
    buffer = io.BytesIO()
    # json.dumps escapes non-ASCII: ImageDescription must be 7-bit ASCII.
    tifffile.imwrite(buffer, pixels, photometric="rgb", compression="zlib", predictor=True, metadata=None,
                     software="stylize", description=json.dumps(metadata) if metadata else None)
    return buffer.getvalue()
