"""A tiled run is interrupted and resumed like any other, and ends where the untiled one ends.

Tiling changes how the objective is evaluated, never its value or gradient,
so a cancel, a checkpoint and a resume must give the same image whether the
levels were evaluated whole or in tiles: this is what lets a print-size run
survive a Ctrl-C.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from stylize import Cancelled, Job, events
from stylize.core.run import checkpoint as checkpoints


@pytest.fixture
def tiny(tiny_net):
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1)


def cancelled_then_resumed(tiny, pictures, output, tile_size):
    """Cancel in the second level, resume from the checkpoint; the resumed job's steps and image."""
    common = dict(output=output, length=64, iterations=16, scales=2, checkpoint_every=100, tile_size=tile_size,
                  **tiny)
    job = Job(*pictures, **common)

    def on_event(event):
        if isinstance(event, events.Step) and event.step == 12:  # the second level starts at step 11
            threading.Thread(target=job.cancel).start()
            threading.Event().wait(0.2)

    with pytest.raises(Cancelled) as caught:
        job.run(on_event)
    assert not output.exists() and checkpoints.load(caught.value.checkpoint).step == caught.value.step
    resumed = Job(*pictures, resume=True, **common)
    seen = []
    image = resumed.run(seen.append)
    return resumed, [e.step for e in seen if isinstance(e, events.Step)], caught.value.step, image


def test_a_tiled_run_resumes_from_its_checkpoint_to_the_untiled_image(tiny, photos, tmp_path):
    pictures = photos["coffee"], photos["astronaut"]
    tiled, tiled_steps, tiled_stop, tiled_image = cancelled_then_resumed(tiny, pictures, tmp_path / "t.png", 16)
    whole, whole_steps, whole_stop, whole_image = cancelled_then_resumed(tiny, pictures, tmp_path / "w.png", "off")
    assert tiled.estimate.tiles[-1] is not None, "the last level really was tiled"
    assert whole.estimate.tiles[-1] is None
    assert tiled_stop == whole_stop and tiled_steps[0] == tiled_stop + 1 and tiled_steps[-1] == 16
    assert tiled_steps == whole_steps
    assert (tmp_path / "t.png").exists() and not checkpoints.path_for(tmp_path / "t.png").exists()
    np.testing.assert_allclose(tiled_image, whole_image, atol=2e-3)
