#!/usr/bin/env python3
"""Video: temporal consistency (Ruder et al.) against frame-by-frame stylization, at equal iterations.

A clip is generated (a pan over the astronaut photo with the coffee photo
gliding across it: known motion, new content at the edge and behind the
moving patch), encoded with FFmpeg, and stylized with *The Scream* twice
through ``stylize.video.VideoJob``: with the temporal loss and the warped
start, and ``independent`` (every frame from its own content image). Both
give every frame the same iterations unless ``--frame-iterations`` says
otherwise. Printed per method: seconds of the first frame and the mean of
the later ones, the mean warping error between consecutive output frames
over reliable pixels (the flicker; ``stylize.video.measure``), and the
mean style (gram) and content errors per frame (unweighted loss terms).

    .venv/bin/python bench/video.py                              # the issue's 48 frames at 256 px
    .venv/bin/python bench/video.py --frames 12 --length 128 --iterations 100
    .venv/bin/python bench/video.py --animation docs/video.webp  # also the README's side-by-side animation

Writes ``bench/video.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def clip_frames(count: int, length: int):
    import numpy as np
    from skimage import data

    from stylize.video.synthetic import pan

    return pan(data.astronaut().astype(np.float32) / 255.0, count, length, step=max(1.0, length / 64),
               sprite=data.coffee().astype(np.float32) / 255.0, sprite_step=max(1.0, length / 40))


def run(method: str, clip: Path, style: str, folder: Path, args) -> dict:
    import numpy as np

    from stylize.core.io.images import load_image
    from stylize.video import VideoJob, events
    from stylize.video.measure import frame_errors, warping_errors

    seconds = {}

    def on_event(event):
        if isinstance(event, events.FrameFinished):
            seconds[event.frame] = event.seconds
            print(f"  {method}: frame {event.frame}/{event.last} {event.seconds:.1f} s", flush=True)

    job = VideoJob(clip, style, folder / f"{method}.mp4", length=args.length, iterations=args.iterations,
                   frame_iterations=args.frame_iterations, independent=method == "independent",
                   temporal_weight=args.temporal_weight, keep_work=True, force=True, threads=args.threads)
    job.run(on_event)
    numbers = sorted(seconds)
    outputs = [load_image(job.work.out(n)) for n in numbers]
    sources = [load_image(job.work.source(n)) for n in numbers]
    terms = frame_errors(job.settings, style, sources, outputs)
    return {"first_frame_s": seconds[numbers[0]],
            "later_frame_s": float(np.mean([seconds[n] for n in numbers[1:]])),
            "warping_error": float(np.mean(warping_errors(sources, outputs))),
            "style_error": float(np.mean([t["gram"] for t in terms])),
            "content_error": float(np.mean([t["content"] for t in terms])),
            "outputs": outputs}


def animation(results: dict, path: Path, fps: float) -> None:
    """Frame by frame (left) beside temporal (right), as an animated WebP or GIF (Pillow)."""
    import numpy as np
    from PIL import Image

    from stylize.core.io.images import to_uint8

    pairs = zip(results["independent"]["outputs"], results["temporal"]["outputs"])
    images = [Image.fromarray(to_uint8(np.concatenate([a, np.ones((a.shape[0], 4, 3)), b], axis=1)))
              for a, b in pairs]
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"lossless": False, "quality": 80} if path.suffix.lower() == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200, help="iterations of the first frame")
    parser.add_argument("--frame-iterations", type=int, default=None,
                        help="iterations of later frames (default: --iterations, equal for both methods)")
    parser.add_argument("--temporal-weight", type=float, default=None)
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--animation", type=Path, default=None, help="write the side-by-side animation here")
    args = parser.parse_args()
    from stylize.video.synthetic import write_clip

    style = str(HERE.parent / "examples" / "images" / "the_scream.jpg")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = write_clip(clip_frames(args.frames, args.length), folder / "clip.mp4", fps=args.fps)
        for method in ("temporal", "independent"):
            started = time.monotonic()
            results[method] = run(method, clip, style, folder, args)
            results[method]["total_s"] = time.monotonic() - started
    if args.animation is not None:
        animation(results, args.animation, args.fps)
    later = args.frame_iterations or args.iterations
    print(f"\n{args.frames} frames at {args.length} px, {args.iterations} iterations for the first frame, "
          f"{later} for later ones; {os.cpu_count()} cores, {platform.processor() or platform.machine()}\n")
    print("| method | first frame (s) | later frames (s, mean) | warping error | style error | content error |")
    print("|---|---|---|---|---|---|")
    for method, r in results.items():
        print(f"| {method} | {r['first_frame_s']:.1f} | {r['later_frame_s']:.1f} | {r['warping_error']:.3g} | "
              f"{r['style_error']:.4g} | {r['content_error']:.4g} |")
    t, i = results["temporal"], results["independent"]
    print(f"\nwarping error: {i['warping_error'] / t['warping_error']:.1f}x lower with temporal; "
          f"style error {100 * (t['style_error'] / i['style_error'] - 1):+.1f}%")
    for r in results.values():
        r.pop("outputs")
    with open(HERE / "video.json", "w") as f:
        json.dump({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
