"""Frames in and out: a video file or a folder of images in, a video (with the source's audio) out.

FFmpeg does the decoding and encoding, from ``imageio-ffmpeg``, which ships
its own static binary in the wheel: nothing to install beside pip, and the
same codecs on every machine. Frames travel as PNG files in the run's work
folder, so that a run can stop and continue frame by frame.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from stylize.core.errors import ImageError, UsageError
from stylize.core.io.files import move_into_place
from stylize.core.io.images import FORMATS, load_image

#: Output containers and how FFmpeg encodes them: video codec arguments, and whether audio fits.
CONTAINERS = {
    ".mp4": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"], True),
    ".mov": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"], True),
    ".mkv": (["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"], True),
    ".webm": (["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "32", "-b:v", "0"], True),
    ".gif": (["-filter_complex", "[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse"], False),
}
#: Frame rate of a folder of images, unless the user gives one.
FOLDER_FPS = 25.0


@dataclass(frozen=True)
class Clip:
    """A source: a video file or a folder of images, its frame rate, and whether it carries audio."""

    path: Path
    fps: float
    frames: tuple[Path, ...] = ()  # a folder's images, in name order; empty for a video file
    audio: bool = False

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


def ffmpeg() -> str:
    import imageio_ffmpeg  # imported when a video is read or written: the CLI stays light

    return imageio_ffmpeg.get_ffmpeg_exe()


def open_clip(path: str | os.PathLike, fps: float | None = None) -> Clip:
    """Check ``path`` and read what the run needs to know before any frame: the frame rate and audio.

    ImageError (one line) for a missing, empty or unreadable source.
    """
    path = Path(path)
    if path.is_dir():
        frames = tuple(sorted(p for p in path.iterdir() if p.suffix.lower() in FORMATS or
                              p.suffix.lower() in (".bmp", ".tif", ".tiff", ".webp")))
        if not frames:
            raise ImageError(f"{path}: a folder with no image files (.png, .jpg) to use as frames")
        return Clip(path, fps or FOLDER_FPS, frames)
    if not path.is_file():
        raise ImageError(f"{path}: no such video file or folder of frames")
    header = _probe(path)
    if " Video: " not in header:
        raise ImageError(f"{path}: not a video FFmpeg can read ({_last_line(header)})")
    return Clip(path, fps or _fps(header, path), audio=" Audio: " in header)


def _probe(path: Path) -> str:
    """FFmpeg's description of ``path`` (``ffmpeg -i`` prints it and exits with an error: no output)."""
    result = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                            errors="replace")
    return result.stderr


def _fps(header: str, path: Path) -> float:
    import re

    for line in header.splitlines():
        if " Video: " in line:
            match = re.search(r"([0-9.]+) (fps|tbr)", line)
            if match and float(match.group(1)) > 0:
                return float(match.group(1))
    raise ImageError(f"{path}: the video does not say its frame rate; give one with --fps")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def read_frames(clip: Clip, stop: int | None = None) -> Iterator[np.ndarray]:
    """The first ``stop`` frames (all if None) as HxWx3 float32 RGB in [0, 1], in order.

    A damaged video is an ImageError; frames of a folder are read (and
    checked) by ``load_image`` like any input image.
    """
    if clip.is_folder:
        for path in clip.frames[:stop]:
            yield load_image(path)
        return
    import imageio_ffmpeg

    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
    reader = imageio_ffmpeg.read_frames(str(clip.path))
    try:
        meta = next(reader)
        width, height = meta["size"]
        for index, raw in enumerate(reader):
            if stop is not None and index >= stop:
                break
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float32) / 255.0
    except (OSError, RuntimeError, StopIteration) as e:
        raise ImageError(f"{clip.path}: cannot decode the video ({decode_reason(e)})") from None
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def decode_reason(error: BaseException) -> str:
    """Why imageio-ffmpeg could not decode, in a few words: its own line and FFmpeg's first log message,
    never FFmpeg's banner (version, build configuration) that it appends."""
    head, _, log = str(error).partition("=== stderr ===")
    messages = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in log.splitlines() if line.startswith("[")]
    if any("partial file" in m or "moov atom not found" in m for m in messages):
        detail = "the file is cut short"
    else:
        detail = messages[0] if messages else ""
    head = " ".join(head.split()) or type(error).__name__
    return f"{head}: {detail}"[:200] if detail else head[:200]


def check_video_output(path: str | os.PathLike) -> Path:
    """The output's container is one stylize can write."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a directory; give a file name such as {path / 'out.mp4'}")
    if path.suffix.lower() not in CONTAINERS:
        raise ImageError(f"{path}: unsupported video extension; use one of {', '.join(CONTAINERS)}")
    return path


def write_video(frames: Path, first: int, count: int, fps: float, output: Path, audio: Clip | None = None,
                audio_start: float = 0.0) -> Path:
    """Encode ``frames/%06d.png`` (``count`` of them from number ``first``) into ``output``, atomically.

    With ``audio`` (a source that has it), its audio from ``audio_start``
    seconds is copied in, unchanged if the container takes its codec,
    otherwise re-encoded to the container's default; the video is cut to
    the frames' length. Width and height are padded to even numbers, as
    4:2:0 video needs.
    """
    codec, takes_audio = CONTAINERS[output.suffix.lower()]
    command = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-framerate", f"{fps:g}",
               "-start_number", str(first), "-i", str(frames / "%06d.png")]
    with_audio = audio is not None and audio.audio and takes_audio
    if with_audio:
        command += ["-ss", f"{audio_start:.6f}", "-i", str(audio.path), "-map", "0:v:0", "-map", "1:a:0"]
    command += ["-frames:v", str(count)]
    if output.suffix.lower() != ".gif":
        command += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    command += codec
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        attempts = ([["-c:a", "copy", "-shortest"], ["-shortest"]] if with_audio else [[]])
        for extra in attempts:
            result = subprocess.run(command + extra + [str(tmp)], capture_output=True, text=True, errors="replace")
            if result.returncode == 0:
                break
        else:
            raise ImageError(f"{output}: FFmpeg could not write the video ({_last_line(result.stderr)})")
        move_into_place(tmp, output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return output
