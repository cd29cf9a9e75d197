#!/usr/bin/env python3
"""Content | style | result in one picture, so that a stylized image is seen with what made it.

`make demo` writes one next to its result, and the README's first picture is
one. Run it with the virtualenv's interpreter: images are read with
stylize's own loader (EXIF orientation, any mode) and written atomically.
Every picture is scaled to the result's height (or ``--height``), aspect kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from stylize.core import StylizeError, load_image, resize
from stylize.core.io.images import save_image


def side_by_side(paths: list[str], height: int | None = None, gap: int = 8) -> np.ndarray:
    """The images of ``paths`` in a row on white, each ``height`` px high (default: the last one's)."""
    images = [load_image(path) for path in paths]
    height = height or images[-1].shape[0]
    scaled = [resize(image, (height, max(1, round(image.shape[1] * height / image.shape[0]))))
              for image in images]
    blank = np.ones((height, gap, 3), np.float32)
    row = [part for image in scaled for part in (image, blank)][:-1]
    return np.concatenate(row, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="content, style(s), result: shown left to right")
    parser.add_argument("-o", "--output", required=True, help="the picture to write (.png, .jpg, .tif)")
    parser.add_argument("--height", type=int, help="height of the row in px (default: the last image's)")
    parser.add_argument("--gap", type=int, default=8, help="white space between the pictures, px (default 8)")
    args = parser.parse_args(argv)
    if len(args.images) < 2 or (args.height is not None and args.height < 1) or args.gap < 0:
        parser.error("give at least two images, a --height of at least 1 and a --gap of at least 0")
    try:
        path = save_image(side_by_side(args.images, args.height, args.gap), args.output)
    except StylizeError as e:
        print(f"side_by_side: error: {e}", file=sys.stderr)
        return e.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
