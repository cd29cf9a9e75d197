#!/usr/bin/env python3
"""Coarse-to-fine against single-scale L-BFGS: wall time and the objective reached.

Both runs use the same losses and are scored with the same full-resolution
objective (content + gram at the reference balance), so only the schedule
differs. Figures are taken in one process, one after the other, and reported
as a ratio. Usage:

    .venv/bin/python bench/multiscale.py --size 512 --iterations 512
    .venv/bin/python bench/multiscale.py --size 256 --schedule 100:75   # iterations per level

The single-scale run also prints its objective every 32 iterations, so one
run shows what single-scale reaches at any fraction of its time. ``--terms``
splits the objective into content and each style layer where each finer
level starts and where each run ends: it shows that a scaled-up coarse
result is far from the fine level's optimum in the deep terms (content,
conv4_1), which is why coarse iterations do not replace fine ones.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def bench_images(size: int):
    """The benchmark's content (the astronaut photo, size x size) and style (The Scream, long side size)."""
    import numpy as np
    from skimage import data

    from stylize.core.io.images import fit_long_side, load_image, resize

    here = os.path.dirname(os.path.abspath(__file__))
    content = resize(data.astronaut().astype(np.float32) / 255.0, (size, size))
    painting = load_image(os.path.join(here, "..", "examples", "images", "the_scream.jpg"))
    return content, resize(painting, fit_long_side(painting.shape[:2], size))


def full_resolution_scorer(content, style, settings=None):
    """A function image -> the objective (default losses) at the content's full resolution.

    The objective is built term by term, a style term per layer, so that
    ``score.terms(image)`` shows what part of it a schedule leaves high; the
    score is their sum.
    """
    from stylize.core import plugins
    from stylize.core.io.images import resize
    from stylize.core.evaluation.objective import WeightedLoss, build_losses, make_backend, make_objective
    from stylize.core.request.settings import Settings

    scoring = settings or Settings(length=max(content.shape[:2]), scales=1)
    backend_cls = plugins.load("stylize.backends", scoring.backend)
    losses = build_losses(scoring, backend_cls)
    per_layer = [WeightedLoss(f"{t.name}:{layer}" if t.loss.role == "style" else t.name,
                              type(t.loss)([layer]), t.weight * t.loss.layer_weights[layer])
                 for t in losses for layer in t.loss.layers]
    objective = make_objective(make_backend(scoring, losses), per_layer, content, style)

    def evaluate(image) -> float:
        return float(objective(objective.backend.preprocess(resize(image, content.shape[:2])))[0])

    def terms(image) -> dict[str, float]:
        evaluate(image)
        return {t.name: float(t.weight * objective.terms[t.name]) for t in objective.losses}

    evaluate.objective, evaluate.terms = objective, terms
    return evaluate


def show_terms(terms: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3g}" for name, value in terms.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=512, help="single-scale iterations")
    parser.add_argument("--multi-iterations", type=int, default=None,
                        help="iterations of the coarse-to-fine run (default: same)")
    parser.add_argument("--schedule", default=None, metavar="N1:N2:...",
                        help="iterations per coarse-to-fine level, coarse first (instead of the default split)")
    parser.add_argument("--history", type=int, default=10, help="L-BFGS history pairs")
    parser.add_argument("--terms", action="store_true",
                        help="also print the full-resolution objective term by term (content, each style "
                             "layer) where each finer level starts and where each run ends")
    parser.add_argument("--json", default="bench/multiscale.json")
    args = parser.parse_args()

    from stylize import Job, events
    from stylize.core.request.schedule import scale_lengths
    from stylize.core.request.settings import Settings

    content, style = bench_images(args.size)
    score = full_resolution_scorer(content, style)

    rows = []
    multi, scales, counts = args.multi_iterations or args.iterations, None, None
    if args.schedule:  # the bench's own split, for the coarse-to-fine run only
        counts = [int(n) for n in args.schedule.split(":")]
        multi, scales = sum(counts), len(counts)
    options = {"lbfgs": {"history": args.history}}

    level_seen = {"level": 0}
    scoring = {"seconds": 0.0}  # spent on --terms inside a run, taken off its wall time

    def trajectory(result) -> None:
        if result.levels == 1 and result.step % 32 == 0:
            print(f"{'':>15}  {result.step:4d} iterations, {time.perf_counter() - start:5.0f} s, "
                  f"objective {result.value:.4g}", flush=True)
        if args.terms and result.level != level_seen["level"]:
            level_seen["level"] = result.level
            begin = time.perf_counter()
            print(f"{'':>15}  level {result.level} after its first iteration: "
                  f"{show_terms(score.terms(result.state))}", flush=True)
            scoring["seconds"] += time.perf_counter() - begin

    for label, scales, iterations in (("single-scale", 1, args.iterations),
                                      ("coarse-to-fine", scales, multi)):
        settings = Settings(length=args.size, iterations=iterations, scales=scales, options=options)
        start, scoring["seconds"] = time.perf_counter(), 0.0
        job = Job(content, style, settings, level_iterations=counts if scales == len(counts or ()) else None)
        image = job.run(lambda event: trajectory(event.result) if isinstance(event, events.Step) else None)
        seconds = time.perf_counter() - start - scoring["seconds"]
        terms = score.terms(image)
        rows.append({"run": label, "levels": scale_lengths(args.size, scales), "iterations": iterations,
                     "seconds": seconds, "objective": sum(terms.values()), "terms": terms})
        print(f"{label:>15}: levels {rows[-1]['levels']}, {iterations} iterations, "
              f"{seconds:.0f} s, objective {rows[-1]['objective']:.4g}", flush=True)
        if args.terms:
            print(f"{'':>15}  terms: {show_terms(terms)}", flush=True)
        level_seen["level"] = 0
    single, coarse = rows
    print(f"time ratio (coarse-to-fine / single-scale): {coarse['seconds'] / single['seconds']:.3f}")
    print(f"objective ratio: {coarse['objective'] / single['objective']:.3f}")
    with open(args.json, "w") as f:
        json.dump({"size": args.size, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
