"""End to end with real VGG19: the temporal loss removes flicker without giving up style."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylize.core.io.images import load_image
from stylize.video import VideoJob
from stylize.video.measure import frame_errors, warping_errors
from stylize.video.synthetic import pan, write_clip

STYLE = str(Path(__file__).resolve().parent.parent / "examples" / "images" / "the_scream.jpg")
FRAMES, LENGTH, ITERATIONS = 8, 64, 24


@pytest.mark.slow
def test_temporal_halves_the_warping_error_at_equal_iterations_and_keeps_the_style(photos, vgg19_weights, tmp_path):
    clip = write_clip(pan(photos["astronaut"], FRAMES, LENGTH, step=2, sprite=photos["coffee"]),
                      tmp_path / "clip.mp4", fps=12)
    found = {}
    for method in ("temporal", "independent"):
        job = VideoJob(clip, STYLE, tmp_path / f"{method}.mp4", length=LENGTH, iterations=ITERATIONS,
                       frame_iterations=ITERATIONS, independent=method == "independent", keep_work=True,
                       checkpoint_every=0)
        job.run()
        assert (tmp_path / f"{method}.mp4").stat().st_size > 0
        outputs = [load_image(job.work.out(n)) for n in range(1, FRAMES + 1)]
        sources = [load_image(job.work.source(n)) for n in range(1, FRAMES + 1)]
        style = np.mean([terms["gram"] for terms in frame_errors(job.settings, STYLE, sources, outputs)])
        found[method] = (np.mean(warping_errors(sources, outputs)), style)
    (temporal_warp, temporal_style), (independent_warp, independent_style) = found["temporal"], found["independent"]
    assert temporal_warp * 2 <= independent_warp, found
    assert temporal_style <= 1.10 * independent_style, found
