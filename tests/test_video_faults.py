"""``stylize video`` on a damaged source (issue 27, item 7): one line that says why, and nothing left behind."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stylize.video import frames as media
from stylize.video.synthetic import pan, write_clip

STYLE = str(Path(__file__).resolve().parent.parent / "examples" / "images" / "the_scream.jpg")
STYLIZE = str(Path(sys.executable).with_name("stylize"))


def test_a_truncated_faststart_mp4_is_one_clean_line_and_leaves_no_work_folder(tmp_path, photos, tiny_net):
    """Before: ``<output>.work/run.key`` stayed behind and the message carried FFmpeg's banner. After: neither."""
    source = write_clip(pan(photos["astronaut"], 6, 48, step=2), tmp_path / "clip.mp4", fps=12)
    faststart = tmp_path / "fast.mp4"  # the index (moov) first: the file probes fine, decoding fails
    subprocess.run([media.ffmpeg(), "-y", "-loglevel", "error", "-i", str(source), "-c", "copy", "-movflags",
                    "+faststart", str(faststart)], check=True)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 2 // 3])
    output = tmp_path / "out.mp4"
    result = subprocess.run([STYLIZE, "video", str(truncated), "-s", STYLE, "-o", str(output), "--backend", "caffe",
                             "--prototxt", tiny_net[0], "--weights", tiny_net[1], "--content-layers", "conv2",
                             "--style-layers", "conv1,conv2", "--length", "48", "-n", "2", "--frame-iterations", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"stylize: error: {truncated}: cannot decode the video (Could not load meta information: the file is cut short)"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "cut.mp4", "fast.mp4"]


def test_decode_reason_keeps_ffmpegs_first_message_without_its_banner():
    error = RuntimeError("Could not load meta information\n=== stderr ===\n\nffmpeg version n9 Copyright\n"
                         "  configuration: --enable-gpl\n[in#0/mov @ 0x1] Invalid data found when processing input\n"
                         "[h264 @ 0x2] other\n")
    assert media.decode_reason(error) == "Could not load meta information: Invalid data found when processing input"
    assert media.decode_reason(OSError("pipe closed")) == "pipe closed"
