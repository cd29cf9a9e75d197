#!/usr/bin/env python3
"""The feed-forward start (``--init fast``): seconds per picture at each length, the picture's own scores, the wait
for the first picture of a Job.

    .venv/bin/python bench/fast_start.py [--pairs rocket-shipwreck ...] [--lengths 384 512] [--repeat 5] [--scores]

Per length, the model's load (two onnxruntime sessions, once per process)
and then, over ``--repeat`` pictures, the median wall and CPU seconds (user
+ system, all threads: what a picture costs while other work shares the
machine) of the whole start (style embedding, transform, resize to the
output) and of its two networks alone. ``--scores`` scores the picture at
the output's size with bench/quality.py's scorers (VGG19 max pooling,
EfficientNet-Lite0; relative errors, lower is better) next to the content
(the default start). ``--first`` times, in a Job, the wait from ``run()``
to its FirstImage event, for ``content`` and ``fast`` (a fresh model load:
the web page's first picture). Whether the optimization should start from
the picture at the coarsest level or a later one is measured by
bench/quality.py with ``init=fast,fast.level=N`` configurations (the
figures: docs/starts.md).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import PAIRS, materialize  # noqa: E402 (bench/ is not a package)


def timed(function, repeat: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``function()`` over ``repeat`` calls, and its last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def first_picture_seconds(content: str, style: str, init: str, length: int) -> float:
    """Seconds from ``Job.run`` to its FirstImage event (then the run is cancelled)."""
    from stylize import Cancelled, Job, events
    job = Job(content, style, length=length, init=init, checkpoint_every=0)
    seen = {}

    def on_event(event) -> None:
        if isinstance(event, events.FirstImage):
            seen["t"] = time.perf_counter() - begin
            job.cancel()
    begin = time.perf_counter()
    try:
        job.run(on_event)
    except Cancelled:
        pass
    return seen["t"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["rocket-shipwreck"], choices=sorted(PAIRS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[384, 512])
    parser.add_argument("--repeat", type=int, default=5, help="pictures timed per length (median)")
    parser.add_argument("--scores", action="store_true", help="also score each picture (bench/quality.py's scorers)")
    parser.add_argument("--first", action="store_true", help="also time a Job's first picture, content and fast")
    parser.add_argument("--work", type=Path, default=Path("out/fast-start"), help="where skimage inputs are written")
    args = parser.parse_args(argv)

    from stylize.core import Images
    from stylize.core.io.inputs import load_inputs
    from stylize.starts import magenta
    from stylize.starts.fast import Fast

    magenta.require()
    wall, cpu = time.perf_counter(), time.process_time()
    magenta.session("arbitrary_predict"), magenta.session("arbitrary_transform")
    print(f"machine: {platform.processor() or platform.machine()}, onnxruntime's default threads; "
          f"model load {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU\n")
    print("| pair | px | start s (wall / CPU) | style net s | transform s | VGG style / content | "
          "EffNet style / content | content's VGG | content's EffNet |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pair in args.pairs:
        content_path, style_path = (materialize(args.work, source) for source in PAIRS[pair])
        for length in args.lengths:
            inputs = load_inputs(content_path, [style_path], length)
            content, style = inputs.content, inputs.styles[0]
            images = Images(content, [style], [1.0])
            start = timed(lambda: Fast().image(images, content.shape[:2], None), args.repeat)
            style_net = timed(lambda: magenta.style_embedding(style), args.repeat)
            embedding = style_net[2]
            transform = timed(lambda: magenta.transform(content, embedding), args.repeat)
            cells = [pair, str(length), f"{start[0]:.2f} / {start[1]:.2f}", f"{style_net[0]:.3f}",
                     f"{transform[0]:.3f}"]
            if args.scores:
                from quality_score import EffNetScorer, VGGScorer
                scorers = [scorer_class(content, style) for scorer_class in (VGGScorer, EffNetScorer)]
                for image in (start[2], content):  # the picture's scores, then the content's
                    cells += [f"{s['style']:.3f} / {s['content']:.3f}" for s in (scorer(image) for scorer in scorers)]
            else:
                cells += ["-"] * 4
            print("| " + " | ".join(cells) + " |", flush=True)
    if args.first:
        pair = args.pairs[0]
        content_path, style_path = (materialize(args.work, source) for source in PAIRS[pair])
        magenta.session.cache_clear()  # the first job of a fresh server loads the model
        print(f"\nFirst picture of a Job ({pair}, {args.lengths[-1]} px): seconds from run() to FirstImage")
        for init in ("content", "fast", "fast"):
            print(f"  {init}: {first_picture_seconds(content_path, style_path, init, args.lengths[-1]):.2f} s",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
