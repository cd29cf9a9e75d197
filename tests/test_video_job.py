"""The frame loop through the Python API (a tiny network): shots, the temporal term's wiring, the ETA."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylize.core.run import events as job_events
from stylize.video import VideoJob, events
from stylize.video.synthetic import pan, write_clip

STYLE = str(Path(__file__).resolve().parent.parent / "examples" / "images" / "the_scream.jpg")


@pytest.fixture
def tiny(tiny_net):
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1, length=48)


def test_a_cut_starts_a_new_shot_and_later_frames_keep_to_the_warped_output(photos, tiny, tmp_path):
    from stylize.core.io.images import resize

    square_coffee = resize(photos["coffee"], (400, 400))
    frames = pan(photos["astronaut"], 3, 48, step=2) + pan(square_coffee, 2, 48, step=2)
    clip = write_clip(frames, tmp_path / "cut.mp4", fps=10)
    seen = []
    VideoJob(clip, STYLE, tmp_path / "out.mp4", iterations=6, frame_iterations=3, **tiny).run(seen.append)
    ready = next(e for e in seen if isinstance(e, events.FramesReady))
    assert ready.shot_starts == (1, 4), "the cut between frame 3 and 4 was not found by the flow"
    started = [e for e in seen if isinstance(e, events.FrameStarted)]
    assert [(e.frame, e.shot_start, e.iterations) for e in started] == \
        [(1, True, 6), (2, False, 3), (3, False, 3), (4, True, 6), (5, False, 3)]
    terms = {}
    frame = 0
    for event in seen:
        if isinstance(event, events.FrameStarted):
            frame = event.frame
        elif isinstance(event, job_events.Step):
            terms.setdefault(frame, set()).update(event.terms)
    assert "temporal" in terms[2] and "temporal" in terms[5]
    assert "temporal" not in terms[1] and "temporal" not in terms[4]
    finished = [e for e in seen if isinstance(e, events.FrameFinished)]
    assert all(e.eta is not None and e.eta >= 0 for e in finished) and finished[-1].eta == 0
    assert isinstance(seen[-1], events.VideoFinished) and (tmp_path / "out.mp4").exists()


def test_a_later_frame_starts_from_the_previous_output_warped(photos, tiny, tmp_path):
    """With no iterations to speak of, frame 2 is frame 1's output moved along the flow, not its own content."""
    clip = write_clip(pan(photos["astronaut"], 2, 48, step=3), tmp_path / "c.mp4", fps=10)
    job = VideoJob(clip, STYLE, tmp_path / "o.mp4", iterations=20, frame_iterations=1, keep_work=True, **tiny)
    job.run()
    from stylize.core.io.images import load_image

    second, warped = load_image(job.work.out(2)), load_image(job.work.frame("warped", 2))
    source = load_image(job.work.source(2))
    assert np.abs(second - warped).mean() < 0.5 * np.abs(second - source).mean()
