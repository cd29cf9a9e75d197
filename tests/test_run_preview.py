"""`stylize run --preview`: the run's live page is served while it runs, and nothing of it stays after."""
from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image


def test_preview_page_is_served_during_the_run(tiny_net, tmp_path):
    prototxt, weights = tiny_net
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    stylize = Path(sys.executable).with_name("stylize")
    command = [str(stylize), "run", "-c", str(tmp_path / "content.png"), "-s", str(tmp_path / "style.png"),
               "-o", str(tmp_path / "out.png"), "-b", "caffe", "--prototxt", prototxt, "--weights", weights,
               "--content-layers", "conv2", "--style-layers", "conv1,conv2", "-l", "48", "-n", "400",
               "--scales", "1", "--preview"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as run:
        try:
            first = run.stderr.readline()
            assert first.startswith("live preview: http://127.0.0.1:"), first
            url = first.split()[-1]
            while "stylizing" not in run.stderr.readline():  # the run has started
                pass
            with urllib.request.urlopen(url, timeout=10) as page:
                assert page.status == 200 and "<html" in page.read().decode().lower()
        finally:
            run.terminate()
            run.wait(timeout=30)
    try:
        urllib.request.urlopen(url, timeout=2)
        served_after = True
    except OSError:
        served_after = False
    assert not served_after
