"""``stylize video`` as users run it: a real process on a real H.264 clip (with audio), a tiny network."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylize.video import frames as media
from stylize.video.synthetic import pan, write_clip

STYLE = str(Path(__file__).resolve().parent.parent / "examples" / "images" / "the_scream.jpg")
STYLIZE = str(Path(sys.executable).with_name("stylize"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("clip")
    frames = pan(photos["astronaut"], 6, 48, step=2, sprite=photos["coffee"])
    return write_clip(frames, folder / "clip.mp4", fps=12, audio=True), frames


@pytest.fixture
def tiny_flags(tiny_net):
    prototxt, weights = tiny_net
    return ["--backend", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "--threads", "1", "--length", "48"]


def stylize(*args) -> subprocess.CompletedProcess:
    return subprocess.run([STYLIZE, "video", *map(str, args)], capture_output=True, text=True)


def probe(path: Path) -> str:
    return subprocess.run([media.ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def count_frames(path: Path) -> int:
    return sum(1 for _ in media.read_frames(media.open_clip(path)))


def test_writes_the_video_at_the_sources_rate_with_its_audio(clip, tiny_flags, tmp_path):
    source, frames = clip
    out = tmp_path / "out" / "styled.mp4"
    result = stylize(source, "-s", STYLE, "-o", out, "-n", 8, "--frame-iterations", 4, *tiny_flags)
    assert result.returncode == 0, result.stderr
    header = probe(out)
    assert " 12 fps" in header and " Audio: " in header
    assert count_frames(out) == len(frames)
    assert "frame 6/6" in result.stderr and "eta" in result.stderr
    assert not (tmp_path / "out" / "styled.mp4.work").exists(), "the work folder outlived the video"
    styled = next(media.read_frames(media.open_clip(out)))
    assert np.abs(styled - frames[0][:styled.shape[0], :styled.shape[1]]).mean() > 0.02, "frame not stylized"


def test_continues_at_the_first_unfinished_frame(clip, tiny_flags, tmp_path):
    source, _ = clip
    out = tmp_path / "styled.mkv"
    args = [source, "-s", STYLE, "-o", out, "-n", 8, "--frame-iterations", 4, "--keep-work", *tiny_flags]
    assert stylize(*args).returncode == 0
    work = tmp_path / "styled.mkv.work" / "out"
    kept = {n: (work / f"{n:06d}.png").stat().st_mtime_ns for n in (1, 2, 3)}
    for n in (4, 5, 6):  # as if the run had been stopped after frame 3
        (work / f"{n:06d}.png").unlink()
    out.unlink()
    result = stylize(*args)
    assert result.returncode == 0, result.stderr
    assert "3 already done" in result.stderr
    assert "frame 3/6" not in result.stderr and "frame 4/6" in result.stderr
    assert {n: (work / f"{n:06d}.png").stat().st_mtime_ns for n in (1, 2, 3)} == kept
    assert count_frames(out) == 6


def test_a_part_of_a_folder_of_frames(clip, tiny_flags, tmp_path):
    from stylize.core.io.images import save_image

    _, frames = clip
    folder = tmp_path / "frames"
    for n, frame in enumerate(frames, start=1):
        save_image(frame, folder / f"f{n:03d}.png")
    out = tmp_path / "part.mp4"
    result = stylize(folder, "-s", STYLE, "-o", out, "--frames", "2:4", "--fps", 10, "-n", 6, *tiny_flags)
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == 3 and " 10 fps" in probe(out) and " Audio: " not in probe(out)


@pytest.mark.parametrize("args, code, message", [
    (["missing.mp4"], 3, "no such video"),
    (["{clip}", "--frames", "3-5"], 2, "--frames"),
    (["{clip}", "--frames", "5:3"], 2, "--frames"),
    (["{clip}", "--loss", "temporal"], 2, "adds the temporal loss itself"),
    (["{clip}", "--temporal-weight", "-1"], 2, "temporal weight"),
    (["{clip}", "-o", "{tmp}/out.avi"], 3, "unsupported video extension"),
    (["{clip}", "-o", "{clip}"], 2, "also an input"),
    (["{junk}"], 3, "not a video"),
])
def test_bad_input_is_one_line_with_its_exit_code(clip, tiny_flags, tmp_path, args, code, message):
    junk = clip[0].with_name("junk.mp4")
    junk.write_bytes(b"not a video at all" * 100)
    fill = {"clip": clip[0], "tmp": tmp_path, "junk": junk}
    args = [a.format(**fill) for a in args]
    output = [] if "-o" in args else ["-o", tmp_path / "out.mp4"]
    result = stylize(*args, "-s", STYLE, *output, "-n", 2, *tiny_flags)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("stylize: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()), "a refused run left files behind"


def test_existing_output_and_a_foreign_work_folder_need_force(clip, tiny_flags, tmp_path):
    source, _ = clip
    out = tmp_path / "v.mp4"
    common = [source, "-s", STYLE, "-o", out, "--frames", ":2", *tiny_flags]
    assert stylize(*common, "-n", 4, "--keep-work").returncode == 0
    again = stylize(*common, "-n", 4)
    assert again.returncode == 3 and "already exists" in again.stderr
    out.unlink()
    other = stylize(*common, "-n", 5)  # other settings: the kept frames must not be reused
    assert other.returncode == 2 and "work folder of a run with other inputs or settings" in other.stderr
    assert stylize(*common, "-n", 5, "--force").returncode == 0


def test_ctrl_c_keeps_the_frames_done_and_the_same_command_continues_inside_the_frame(clip, tiny_flags, tmp_path):
    import signal
    import time

    from PIL import Image

    source, _ = clip
    out = tmp_path / "v.mp4"
    args = [STYLIZE, "video", source, "-s", STYLE, "-o", out, "--frames", "1:2", "-n", 5, "--frame-iterations", 3000,
            "--keep-work", *tiny_flags]
    process = subprocess.Popen(list(map(str, args)), stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "v.mp4.work" / "out" / "000002.png.checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted at frame 2" in stderr and not out.exists() and checkpoint.exists()
    again = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "1 already done" in again.stderr and "frame 1/2" not in again.stderr
    with Image.open(tmp_path / "v.mp4.work" / "out" / "000002.png") as frame:
        assert int(frame.text["stylize:resumed-from"]) >= 10, "frame 2 started over instead of resuming"
    assert count_frames(out) == 2
