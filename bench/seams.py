"""Seams at tile borders: a crop across a border of a tiled run, and how much the image jumps there.

A tiled run is exact (tests/test_tiling*.py), so nothing should mark the
tile borders. This shows it on a real picture: for a run started from
INIT and made with ``--tile-size``, it crops the output and the change
the run made (|output - init|, amplified) around the crossing of a row
border and a column border, saves both side by side, and prints the mean
jump between neighbouring pixel columns (rows) on the borders against
the mean jump across every 16th column (row: the borders' phase of the
network's stride), and where each border's jump ranks among those: a seam
would stand out as a ratio well above 1, at the top rank.

    python bench/seams.py OUT.png INIT.png --tile-size 1024 --save docs/tiling-seams.png
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from stylize.core.io.images import load_image, resize
from stylize.core.evaluation.tiling import edges

#: The network's total stride (VGG up to conv5_1): tile borders lie on multiples of it.
STRIDE = 16


def borders(length: int, tile_size: int) -> list[int]:
    """Inner core edges along an axis of ``length`` px, as the run plan cuts it for ``--tile-size``."""
    core = tile_size // STRIDE * STRIDE
    return list(edges(length, -(-length // core), STRIDE)[1:-1])


def jumps(image: np.ndarray, axis: int) -> np.ndarray:
    """Mean absolute difference between neighbouring lines along ``axis`` (one value per gap)."""
    other = tuple(a for a in range(image.ndim) if a != axis)
    return np.abs(np.diff(image, axis=axis)).mean(axis=other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("init")
    parser.add_argument("--tile-size", type=int, required=True)
    parser.add_argument("--crop", type=int, default=320, help="side of the crop (px)")
    parser.add_argument("--save", help="PNG to write the crops to")
    args = parser.parse_args()

    out = load_image(args.output)
    change = np.abs(out - resize(load_image(args.init), out.shape[:2]))  # the run's own start
    rows, cols = borders(out.shape[0], args.tile_size), borders(out.shape[1], args.tile_size)
    print(f"{out.shape[1]}x{out.shape[0]} px, core borders at rows {rows} and columns {cols}")
    for name, image in (("output", out), ("change", change)):
        for axis, lines in ((1, cols), (0, rows)):
            if not lines:
                continue
            # Borders lie on the network's stride, where pooling may leave its own pattern:
            # compare with the gaps at the same phase (every STRIDE-th line), not with all.
            gaps = jumps(image, axis)[STRIDE - 1::STRIDE]
            on = gaps[[line // STRIDE - 1 for line in lines]]  # the gap between line-1 and line
            ranks = ", ".join(f"{(gaps < g).mean():.0%}" for g in on)
            what = "column" if axis == 1 else "row"
            print(f"{name}: mean jump across {what} borders {on.mean():.4f}, across every {STRIDE}th {what} "
                  f"{gaps.mean():.4f} (ratio {on.mean() / gaps.mean():.2f}; each border's jump is above {ranks} "
                  "of those)")
    if args.save and rows and cols:
        half = args.crop // 2
        r, c = rows[0], cols[0]
        window = (slice(r - half, r + half), slice(c - half, c + half))
        amplified = np.clip(change[window] / max(change[window].max(), 1e-6), 0, 1)
        both = np.concatenate([marked(out[window]), marked(amplified)], axis=1)
        Image.fromarray((both * 255).round().astype(np.uint8)).save(args.save)
        print(f"wrote {args.save}: crop around the border crossing at row {r}, column {c} "
              f"(left: output; right: |output - init|, amplified; red ticks in the margin mark the borders)")


def marked(crop: np.ndarray, margin: int = 8) -> np.ndarray:
    """``crop`` in a white margin with red ticks pointing at its middle row and column (the borders)."""
    h, w = crop.shape[:2]
    framed = np.ones((h + 2 * margin, w + 2 * margin, 3), np.float32)
    framed[margin:-margin, margin:-margin] = crop
    red = np.array([0.85, 0.1, 0.1], np.float32)
    row, col = margin + h // 2, margin + w // 2
    for band in (slice(0, margin - 2), slice(-margin + 2, None)):
        framed[band, col - 1:col + 1] = red
        framed[row - 1:row + 1, band] = red
    return framed


if __name__ == "__main__":
    main()
