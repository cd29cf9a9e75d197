"""Uploads: untrusted bytes, checked as the CLI checks its inputs, kept only if they are an image.

A body is streamed into ``incoming/`` and counted on the way (a body over
the limit is cut off there); the image's declared size is checked before
anything is decoded; then ``load_image`` decodes it with every rule the
command line applies (decompression bombs, truncation, non-images, odd
modes). Only then is the file moved into ``uploads/`` under a random name,
with a thumbnail the server encodes itself. A refused upload leaves nothing
behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
import unicodedata
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from stylize.core.errors import StylizeError, one_line
from stylize.core.io.files import atomic_write
from stylize.core.io.images import fit_long_side, load_image, resize, to_uint8

from .work import UPLOAD_ID, Refused, WorkFolder, new_upload_stem, regular

#: Pillow's format name -> the extension an upload is stored with (others: ``img``).
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "GIF": "gif", "BMP": "bmp", "TIFF": "tif",
              "WEBP": "webp", "PPM": "ppm"}
THUMB_LENGTH = 320


@dataclass(frozen=True)
class Upload:
    id: str
    #: The sender's file name, cleaned up: a label shown on the page, never part of a path.
    name: str
    width: int
    height: int
    format: str
    bytes: int
    created: float

    def to_json(self) -> dict:
        return {**asdict(self), "thumb": f"/api/uploads/{self.id}/thumb.jpg"}


def label(name: str | None) -> str:
    """A file name a client sent, made safe to show: its last component, printable, at most 80 characters."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".") or "upload"
    return name if len(name) <= 80 else name[:38] + "..." + name[-39:]


class UploadStore:
    def __init__(self, work: WorkFolder, max_pixels: int):
        self.work, self.max_pixels = work, max_pixels

    @contextlib.contextmanager
    def receiving(self):
        """A new file in ``incoming/`` to stream a body into; removed on exit unless ``accept`` moved it."""
        path = self.work.incoming / f"{new_upload_stem()}.part"
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def accept(self, received: Path, sent_name: str | None) -> Upload:
        """Check ``received`` as an image; keep it (moved out of ``incoming/``) or raise Refused (400)."""
        name = label(sent_name)
        size = received.stat().st_size
        fmt = self._check_declared(received, name)
        try:
            image = load_image(received)
        except StylizeError as e:
            raise Refused(400, one_line(e).replace(str(received), name)) from None
        stem = new_upload_stem()
        upload = Upload(f"{stem}.{EXTENSIONS.get(fmt, 'img')}", name, image.shape[1], image.shape[0], fmt or "?",
                        size, time.time())
        target = self.work.uploads / upload.id
        thumb = resize(image, fit_long_side(image.shape[:2], min(THUMB_LENGTH, max(image.shape[:2]))))
        with atomic_write(f"{target}.jpg") as f:
            Image.fromarray(to_uint8(thumb), mode="RGB").save(f, format="JPEG", quality=85)
        with atomic_write(f"{target}.json") as f:
            f.write(json.dumps(asdict(upload)).encode())
        os.replace(received, target)  # last: an upload is listed only once all of it is in place
        return upload

    def _check_declared(self, path: Path, name: str) -> str | None:
        """The size the file declares, refused above ``max_pixels`` before any decoding; its format."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as img:
                    width, height = img.size
                    fmt = img.format
        except Image.DecompressionBombError:
            raise Refused(400, f"{name}: declares more pixels than this server accepts "
                               f"({self.max_pixels:,}; a guard against decompression bombs); "
                               "scale the image down first") from None
        except Exception:
            return None  # not an image, or damaged: load_image says which, in the CLI's words
        if width * height > self.max_pixels:
            raise Refused(400, f"{name}: declares {width}x{height} pixels, more than the {self.max_pixels:,} "
                               "this server accepts (a guard against decompression bombs); scale the image "
                               "down first")
        return fmt

    def get(self, upload_id: str) -> Upload:
        path = self.work.upload(upload_id)
        return self._read(path)

    def _read(self, path: Path) -> Upload:
        try:
            return Upload(**json.loads(Path(f"{path}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return Upload(path.name, path.name, 0, 0, "?", path.stat().st_size, path.stat().st_mtime)

    def thumbnail(self, upload_id: str) -> Path:
        return Path(f"{self.work.upload(upload_id)}.jpg")

    def list(self) -> list[Upload]:
        """Every upload, newest first."""
        found = [self._read(path) for path in self.work.uploads.iterdir()
                 if UPLOAD_ID.fullmatch(path.name) and regular(path)]
        return sorted(found, key=lambda upload: -upload.created)

    def label_of(self, path: Path) -> str:
        """How messages name an uploaded file: its label, not its path on the server."""
        upload_id = self.work.upload_id_of(path)
        return self._read(path).name if upload_id else path.name


def encode_jpeg(image, longest: int | None = None, quality: int = 80) -> bytes:
    """An HxWx3 float image as JPEG bytes, scaled down to ``longest`` pixels on its long side if larger."""
    if longest is not None and max(image.shape[:2]) > longest:
        image = resize(image, fit_long_side(image.shape[:2], longest))
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image), mode="RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
