"""An image file as the start (``--init PATH``): resume from an earlier result, or start from a sketch."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from stylize.core import Images, Option, StartImage, UsageError, load_image, resize


class File(StartImage):
    """An image file, resized to the output's shape (``--init PATH`` names it directly)."""

    options = (Option("path", str, None, "The image file to start from.", path=True),)

    def __init__(self, path: str | None = None, **options):
        self.path = path

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        path = options.get("path")
        if path is None:
            raise UsageError("start 'file' needs an image: --init PATH (or --set file.path=PATH)")
        if not Path(path).is_file():
            raise UsageError(f"--init {path!r}: not a start's name or an existing image file")

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(load_image(self.path), shape)
