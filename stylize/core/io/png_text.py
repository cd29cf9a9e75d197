"""Text chunks put into an encoded PNG: the run's metadata on files that Pillow did not write.

stylize writes what made an image into its PNG text (``stylize:settings``
and friends; the web app's gallery and its "run again" read them back).
Pillow writes that text itself, but it cannot write 16-bit RGB, and
OpenCV, which can, writes no text. So the chunks are put in here, as
Pillow's ``PngInfo.add_text`` would write them: ``tEXt`` where key and
value are Latin-1, else ``iTXt`` (UTF-8, uncompressed). They go right
after ``IHDR``, before the image data, where every reader finds them
without decoding the pixels.
"""
from __future__ import annotations

import struct
import zlib
from typing import Mapping

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Signature, then IHDR: length (4), type (4), 13 bytes of header, CRC (4).
_AFTER_IHDR = len(SIGNATURE) + 4 + 4 + 13 + 4


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def text_chunk(key: str, value: str) -> bytes:
    """``tEXt`` for Latin-1 text, ``iTXt`` (UTF-8) otherwise; ValueError for a key PNG does not allow."""
    try:
        keyword = key.encode("latin-1")
    except UnicodeEncodeError:
        keyword = b""
    if not 1 <= len(keyword) <= 79 or b"\0" in keyword:
        raise ValueError(f"PNG text key {key!r}: must be 1 to 79 Latin-1 characters without NUL")
    try:
        return chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        # keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword, text
        return chunk(b"iTXt", keyword + b"\0\0\0" + b"\0" + b"\0" + value.encode("utf-8"))


def with_text(png: bytes, metadata: Mapping[str, object]) -> bytes:
    """``png`` with one text chunk per item of ``metadata`` (values as ``str``) after its IHDR."""
    if png[:len(SIGNATURE)] != SIGNATURE or png[len(SIGNATURE) + 4:len(SIGNATURE) + 8] != b"IHDR":
        raise ValueError("not a PNG that starts with its IHDR chunk")
    text = b"".join(text_chunk(key, str(value)) for key, value in metadata.items())
    return png[:_AFTER_IHDR] + text + png[_AFTER_IHDR:]
