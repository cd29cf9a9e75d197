"""Reading, scaling and writing images (Pillow), as HxWx3 float32 RGB in [0, 1].

Pillow is used rather than caffe.io (broken with current scikit-image) or
scikit-image's readers because it honours EXIF orientation and reads every
common format and mode; OpenCV only where Pillow would lose bits (16-bit RGB
PNG and TIFF). Writing: ``image_formats`` (8 or 16 bits, with metadata).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError, one_line
from .files import atomic_write
from .image_formats import FORMATS, check_bit_depth, encode, quantize


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as HxWx3 float32 RGB in [0, 1], or raise a one-line ImageError.

    Every file is untrusted. The rules, so that no input gives a traceback,
    a black image or NaNs:

    - EXIF orientation is applied, so a phone photo is upright (an unreadable
      EXIF block leaves the image as stored rather than losing it);
    - transparency is composited over white (RGBA, LA, palette transparency);
    - grayscale, palette, CMYK, CIELAB and 16-bit images become RGB, 16-bit
      scaled (not clipped) to [0, 1], 16-bit RGB(A) PNG and TIFF at their
      full precision (``_deep_rgb``), so a 16-bit output can be fed back in;
    - missing, empty, damaged, truncated and non-image files are refused,
      and so is anything over ``MAX_PIXELS`` before it is decoded.
    """
    path = Path(path)
    try:
        _check_readable_file(path)
        with warnings.catch_warnings(), _c_stderr_silenced():
            # The image loads or raises: Pillow's warnings (EXIF tags it skips, its decompression
            # bomb warning, where MAX_PIXELS decides instead) would only clutter stderr.
            warnings.filterwarnings("ignore", module=r"PIL\.")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixel_count(img.size, path)
                deep = _sixteen_bit_rgb(img)  # asked before load(), which empties img.tile
                img.load()  # decode now: truncation surfaces here, as an error
                pixels = _deep_rgb(path, img) if deep else None
                return _as_rgb(_upright(img), path) if pixels is None else pixels
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied; make the file readable") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read "
                         "(PNG, JPEG, TIFF, BMP, WebP, ...)") from None
    except Image.DecompressionBombError:  # over twice Pillow's limit: refused before its size is known
        raise ImageError(f"{path}: more than {MAX_PIXELS:,} pixels, the most stylize reads "
                         "(a guard against decompression bombs); scale the image down first") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode this image; scale it down first") from None
    except Exception as e:
        # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error...
        # on damaged data; any of them means the same thing to the user.
        raise ImageError(f"{path}: damaged or truncated image file ({one_line(e)})") from e


#: The most pixels stylize decodes (128 Mi, e.g. 16384 x 8192): checked on the
#: size a file declares, before decoding, so that a small file declaring huge
#: dimensions (a decompression bomb) is refused instead of exhausting memory.
#: Pillow's own guard would only warn from 89 megapixels and fail from 179.
MAX_PIXELS = 1 << 27


@contextlib.contextmanager
def _c_stderr_silenced():
    """Send what C libraries print to file descriptor 2 to /dev/null meanwhile.

    libtiff prints its complaints about a damaged file ("Using code not yet
    in table.") straight to stderr, around stylize's own one-line message;
    the exception Pillow raises already says what matters.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded, closed): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_readable_file(path: Path) -> None:
    """Refuse what is not a regular, non-empty file before Pillow opens it.

    A directory, a FIFO or a device (``/dev/zero``) would otherwise give an
    obscure error, or make Pillow read forever.
    """
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes), not an image")


def _check_pixel_count(size: tuple[int, int], path: Path) -> None:
    """Refuse an image with no pixels, or more than MAX_PIXELS, from its declared size."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{path}: declares a {width}x{height} image, which has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: {width}x{height} is more than {MAX_PIXELS:,} pixels, the most stylize "
                         "reads (a guard against decompression bombs); scale the image down first")


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as stored if that tag cannot be read.

    A damaged EXIF block is common and says nothing about the pixels, so it
    must not cost the user the picture.
    """
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _as_rgb(img: Image.Image, path: Path) -> np.ndarray:
    """Any Pillow mode as HxWx3 float32 in [0, 1]; transparency over white."""
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img.alpha_composite(rgba)
    if img.mode.startswith("I") or img.mode == "F":
        return _high_depth_gray(img)
    if img.mode == "LAB":
        img = _lab_to_srgb(img)
    try:
        rgb = img.convert("RGB")  # L, 1, P, CMYK (Adobe's inverted CMYK too), YCbCr, HSV, RGBX
    except ValueError:
        raise ImageError(f"{path}: colour mode {img.mode} is not supported; save the image as RGB") from None
    return np.asarray(rgb, dtype=np.float32) / np.float32(255.0)


def _sixteen_bit_rgb(img: Image.Image) -> bool:
    """Whether an opened, not yet loaded, image is RGB or RGBA with 16 bits per sample.

    Pillow has no 16-bit RGB mode: it opens such a PNG or TIFF as "RGB" or
    "RGBA" and keeps only the high byte of each sample. Its tile's raw mode
    ("RGB;16B", "RGBA;16N", ...) still says what the file holds.
    """
    if img.mode not in ("RGB", "RGBA") or not img.tile:
        return False
    args = img.tile[0][3]
    rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""
    return isinstance(rawmode, str) and ";16" in rawmode


def _deep_rgb(path: Path, img: Image.Image) -> np.ndarray | None:
    """A 16-bit RGB(A) file, already checked and decoded by Pillow, decoded again at 16 bits by OpenCV.

    The rules of ``load_image`` hold as for any image: the EXIF orientation
    of ``img`` is applied, transparency is composited over white. None if
    OpenCV cannot decode what Pillow could: Pillow's 8-bit reading stands.
    """
    import cv2
    data = np.fromfile(path, dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # BGR(A), uint16, no EXIF turn
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        return None
    rgb = pixels[..., 2::-1].astype(np.float32) / np.float32(65535.0)
    if pixels.shape[2] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / np.float32(65535.0)
        rgb = rgb * alpha + (1.0 - alpha)
    return np.ascontiguousarray(_turned(rgb, _orientation(img)), dtype=np.float32)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1: as stored); 1 if the EXIF block cannot be read."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _turned(image: np.ndarray, orientation: int) -> np.ndarray:
    """An HxWxC array turned upright by its EXIF orientation, as ``ImageOps.exif_transpose`` turns images."""
    swap = (1, 0, 2)
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.transpose(swap), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(swap),
             8: lambda a: np.rot90(a, 1)}
    return turns.get(orientation, lambda a: a)(image)


def _lab_to_srgb(img: Image.Image) -> Image.Image:
    """CIELAB (TIFFs from Photoshop) through a colour transform: Pillow's plain
    ``convert`` would read L, a and b as if they were R, G and B."""
    from PIL import ImageCms
    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                        "LAB", "RGB")
    return ImageCms.applyTransform(img, transform)


def _high_depth_gray(img: Image.Image) -> np.ndarray:
    """16-bit ("I;16", "I") or float ("F") grayscale as RGB in [0, 1].

    Pillow's ``convert("RGB")`` clips these modes at 255 instead of scaling
    them, which turns almost every pixel of a 16-bit image white.
    """
    gray = np.asarray(img, dtype=np.float64)
    finite = gray[np.isfinite(gray)]
    peak = float(finite.max()) if finite.size else 0.0
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:  # "I" and "F" do not say their range: the smallest usual one that holds the data
        ranges = (1.0, 255.0, 65535.0) if img.mode == "F" else (255.0, 65535.0)
        top = next((t for t in ranges if peak <= t), peak)
    gray = np.clip(np.nan_to_num(gray / top, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
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
    return quantize(image, 8)


def check_output_path(path: str | os.PathLike, bit_depth: int = 8) -> Path:
    """Fail before any work if ``path`` cannot receive an image of ``bit_depth`` bits per channel."""
    path = Path(path)
    if path.is_dir():  # checked first: a folder named "x" is not a bad extension
        raise ImageError(f"{path}: is a directory; give a file name such as {path / 'out.png'}")
    if path.suffix.lower() not in FORMATS:
        raise ImageError(f"{path}: unsupported output extension; use one of {', '.join(FORMATS)}")
    check_bit_depth(str(path), FORMATS[path.suffix.lower()], bit_depth)
    return path


def check_new_output(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Fail before any work if ``path`` may not or cannot receive the output image.

    On top of ``check_output_path``: an existing file is kept unless ``force``
    (a repeated command or a typo must not destroy an earlier result), and
    the folder must accept a new file, which is tried for real because
    permission bits do not tell (read-only mounts, ACLs, root). Folders that
    do not exist yet are not created here: the nearest existing one above
    them is tried instead, so a run that fails later leaves nothing behind.
    """
    path = check_output_path(path)
    if path.exists() and not force:
        raise ImageError(f"{path}: already exists; pass --force to overwrite it, or choose another name")
    _check_writable_folder(path)
    return path


def _check_writable_folder(path: Path) -> None:
    """Create and remove a probe file in the nearest existing folder above ``path``."""
    folder = path.parent
    try:
        while not folder.exists():
            folder = folder.parent
    except OSError as e:  # e.g. a folder on the way that we may not look into
        raise ImageError(f"{path}: cannot reach its folder ({e.strerror or e}); "
                         "choose another output path") from None
    if not folder.is_dir():
        raise ImageError(f"{path}: {folder} is a file, not a folder; choose another output path")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".stylize-probe-")
    except OSError as e:
        raise ImageError(f"{path}: cannot write in {folder} ({e.strerror or e}); "
                         "choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)


#: Smallest short side, in pixels, of an image as the network sees it. VGG's
#: deepest style layer (conv5_1) lies after four 2x2 poolings, so below 16 px
#: it sees less than one position; and the thinner an image, the closer a
#: network without padding comes to an empty layer, where Caffe aborts.
MIN_SIDE = 16


def check_working_size(shape: tuple[int, ...], what: str, coarsest: float = 1.0) -> None:
    """Refuse an image too thin to stylize, at the size the network will see it.

    ``shape`` is the image's size at the output's scale (after ``--length``);
    ``coarsest`` is the size of the coarsest coarse-to-fine level relative to
    that. Tiny images are fine, they are scaled up (a 1x1 image becomes a
    flat colour); it is the short side that must reach MIN_SIDE, which only
    very thin images (a 2000x1 strip) or a very small ``--length`` miss.
    """
    h, w = shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{what} would be {w}x{h} px at this --length; stylize needs at least "
                         f"{MIN_SIDE} px on the short side: use a larger --length or a less thin image")
    ch, cw = fit_long_side((h, w), max(1, round(max(h, w) * coarsest)))
    if min(ch, cw) < MIN_SIDE:
        raise ImageError(f"{what} would be {cw}x{ch} px at the coarsest scale; stylize needs at least "
                         f"{MIN_SIDE} px on the short side: use fewer --scales (--scales 1 for one)")


def save_image(image: np.ndarray, path: str | os.PathLike, metadata: dict[str, str] | None = None,
               bit_depth: int = 8) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename.

    A crash or a full disk never leaves a half-written image at ``path``.
    Parent folders are created. PNG files carry ``metadata`` as text chunks,
    TIFF files as JSON in their ImageDescription. ``bit_depth`` 16 (PNG,
    TIFF) quantizes the float image straight to 16 bits per channel; a
    format that cannot hold it is a UsageError (see ``image_formats``).
    """
    path = check_output_path(path, bit_depth)
    try:
        data = encode(image, FORMATS[path.suffix.lower()], bit_depth, metadata)
        with atomic_write(path) as f:
            f.write(data)
    except OSError as e:
        raise ImageError(f"{path}: cannot write image ({e.strerror or e})") from None
    return path
