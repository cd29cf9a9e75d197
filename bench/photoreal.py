#!/usr/bin/env python3
"""Photorealistic transfer against a ten-line colour transfer (issue 28): three scores, tables, a sheet.

    .venv/bin/python bench/photoreal.py [--size 256] [--pairs night warm muted] [--configs ...]
        [--out bench-out/photoreal] [--markdown docs/photoreal-tables.md] [--sheet docs/photoreal.png]

Photo pairs (content <- style) from scikit-image's bundled photos (installed by the test extra):
``night`` a motorcycle in a garage by day <- a launch pad at dusk, ``warm`` the astronaut <- a coffee
cup on dark wood, ``muted`` the coffee cup <- the grey-green cat. Each configuration's output is scored
against the content and the style (bench/photoreal_scores.py: residual, dL, swd, and ``flat``, the
residual in the content's flattest quarter, where painted texture shows first); the tables are printed
and written as markdown, and a sheet (per pair: content | style | each output) as PNG.

Configurations (``CONFIGS``): ``content`` itself; the global transfers (stylize/starts/colour.py)
``reinhard`` (Lab mean and std), ``covariance`` (Lab mean and covariance) and ``distribution`` (Pitie's
whole Lab distribution), the first and last also with ``+smooth``; ``before``, the ``--preset photo`` of before issue 28
(gram + affine from the content, ratio 1e3, the default schedule); and the optimized variants, from the
Reinhard start, each with its ``+smooth`` finish (Li et al. 2018's closed form, ``affine.smooth``):
``start`` (gram + affine, one level), ``luan`` (Luan et al.'s two stages: style alone, then gram +
a strong affine term from that result), ``regions`` (``start`` with the style's Grams per matched
region: k-means of content and style pixels together on VGG19 conv4_1 features and Lab colour,
bench/photoreal_regions.py) and ``preset``, today's ``--preset photo`` (from the ``distribution``
start, with its smoothing). ``TUNING`` (``--configs tune-...``, not run by default): the candidates for
the preset's optimization between that start and the smoothing, and the smoothing's strength alone.
Every run is in fp32 (``--precision fp32``: most users' CPUs have no bf16) on one BLAS thread, and its
network evaluations are counted (``counting``): CPU seconds and evaluations survive a shared machine.
``--speed --size 512`` compares the preset's work with the default run's (docs/photoreal.md).

Outputs are kept in ``--out`` (``PAIR/CONFIG.png`` with ``.json``: wall and CPU seconds, evaluations), and a
rerun computes only what is missing: delete a file to recompute it. Heavy (each optimized variant is
a VGG19 run): run it under ``flock /tmp/stylize-bench.lock``.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from photoreal_scores import scores

from stylize.starts.colour import TRANSFERS
from stylize.core.io.images import fit_long_side, load_image, resize, save_image

#: content <- style, scikit-image photo names.
PAIRS = {"night": ("motorcycle", "rocket"), "warm": ("astronaut", "coffee"), "muted": ("coffee", "chelsea")}
#: Today's network; fp32 as on most users' CPUs; one BLAS thread, so that CPU seconds compare across runs.
NETWORK = {"backend": "caffe-vgg19", "threads": 1, "options": {"caffe-vgg19": {"precision": "fp32"}}}
#: The preset as it was before issue 28 (stylize/core/request/presets.py at 68c696b).
BEFORE = {"losses": ("gram", "affine"), "init": "content", "ratio": 1e3}
#: The optimized variants' common settings: one level from the colour-transferred start.
ONE_LEVEL = {"scales": 1, "iterations": 100, "ratio": 1e3, "losses": ("gram", "affine")}
#: Li et al.'s smoothing strength used by the ``+smooth`` rows.
SMOOTH = 1e-4

CONFIGS: dict[str, dict] = {
    "content": {"global": None},
    "reinhard": {"global": "reinhard"},
    "covariance": {"global": "covariance"},
    "distribution": {"global": "distribution"},
    "reinhard+smooth": {"global": "reinhard", "smooth": SMOOTH},
    "distribution+smooth": {"global": "distribution", "smooth": SMOOTH},
    "before": {"stages": [BEFORE]},
    "start": {"start": "reinhard", "stages": [ONE_LEVEL]},
    "start+smooth": {"from": "start", "smooth": SMOOTH},
    "luan": {"start": "reinhard", "stages": [{**ONE_LEVEL, "losses": ("gram",), "iterations": 60},
                                             {**ONE_LEVEL, "iterations": 40, "options": {"affine": {"weight": 1e7}}}]},
    "luan+smooth": {"from": "luan", "smooth": SMOOTH},
    "regions": {"start": "reinhard", "stages": [ONE_LEVEL], "regions": 3},
    "regions+smooth": {"from": "regions", "smooth": SMOOTH},
    "preset": {"preset": "photo"},
}

#: Candidates for the preset's optimization between the ``distribution`` start and the smoothing (``--configs
#: tune-...``, not run by default): which keeps the start's tone (issue 28's targets); ``distribution+smooth``
#: is the same without any optimization.
TUNING: dict[str, dict] = {
    f"tune-{name}": {"start": "distribution", "smooth": SMOOTH,
                     "stages": [{**ONE_LEVEL, "iterations": iterations, "ratio": ratio, "losses": losses}]}
    for name, iterations, ratio, losses in (
        ("r1e3-n64", 64, 1e3, ("gram", "affine")),   # the preset before this tuning
        ("r1e3-n16", 16, 1e3, ("gram", "affine")),
        ("r1e4-n16", 16, 1e4, ("gram", "affine")),
        ("r1e5-n4", 4, 1e5, ("gram", "affine")),
        ("r1e5-n8", 8, 1e5, ("gram", "affine")),
        ("r1e5-n16", 16, 1e5, ("gram", "affine")),
        ("r1e5-n32", 32, 1e5, ("gram", "affine")),
        ("meancov-r1e4-n16", 16, 1e4, ("meancov", "affine")),
        ("affine-n16", 16, 1e3, ("affine",)),        # the content and affine terms alone
    )
}
#: And the smoothing's own trade-off without the network (its strength: lower is more locally affine).
TUNING.update({f"tune-smooth-{strength:.0e}": {"global": "distribution", "smooth": strength}
               for strength in (3e-4, 5e-5, 2e-5)})
ALL = {**CONFIGS, **TUNING}


def photo(name: str) -> np.ndarray:
    from skimage import data
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return image.astype(np.float32) / 255.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def counting():
    """Counts the network's evaluations (objective calls, with their gradients) made inside the block:
    what a run costs whatever else shares the CPU."""
    from stylize.core.evaluation.objective import Objective
    counted, finish = [0], Objective.finish

    def counted_finish(self, total, grad):
        counted[0] += 1
        return finish(self, total, grad)

    Objective.finish = counted_finish
    try:
        yield counted
    finally:
        Objective.finish = finish


def run_job(content, style, settings: dict, init: str, **job) -> np.ndarray:
    import stylize
    options = {**NETWORK["options"], **settings.get("options", {})}
    given = {**NETWORK, **settings, "options": options, "init": init}
    return stylize.Job(content, style, checkpoint_every=0, **given, **job).run()


def make(name: str, config: dict, content, style, folder: Path, size: int) -> np.ndarray:
    """The output of configuration ``name`` for one pair (both images at the run's size)."""
    if "global" in config:
        image = content if config["global"] is None else TRANSFERS[config["global"]](content, style)
    elif "from" in config:
        image = load_image(folder / f"{config['from']}.png")
    elif "preset" in config:
        import stylize
        image = stylize.Job(content, style, preset=config["preset"], length=size, checkpoint_every=0,
                            threads=NETWORK["threads"], options=NETWORK["options"]).run()
    else:
        init = "content"
        if config.get("start"):
            init = str(save_image(TRANSFERS[config["start"]](content, style), folder / f"start-{config['start']}.png"))
        masks = {}
        if config.get("regions"):
            from photoreal_regions import matched_masks
            content_mask, style_mask = matched_masks(content, style, config["regions"])
            masks = {"content_mask": content_mask, "style_masks": [style_mask]}
            save_image(np.concatenate([content_mask, resize(style_mask, content.shape[:2])], axis=1),
                       folder / f"{name}-masks.png")
        image = content
        for stage in config["stages"]:
            image = run_job(content, style, {"length": size, **stage}, init, **masks)
            init = str(save_image(image, folder / f"{name}-stage.png"))
    if config.get("smooth"):
        from stylize.losses.affine import matting_laplacian, smooth
        image, _ = smooth(image, matting_laplacian(content), config["smooth"])
    return image


def produce(pair: str, names, size: int, out: Path, cached: bool = False) -> dict[str, np.ndarray]:
    """Each configuration's output for ``pair``, computed where not kept yet (with its seconds); with
    ``cached``, only those kept."""
    content_name, style_name = PAIRS[pair]
    content = photo(content_name)
    content = resize(content, fit_long_side(content.shape[:2], size))
    style = photo(style_name)
    style = resize(style, fit_long_side(style.shape[:2], size))
    folder = out / pair
    folder.mkdir(parents=True, exist_ok=True)
    images = {"content image": content, "style image": style}
    for name in names:
        path, record = folder / f"{name}.png", folder / f"{name}.json"
        if not (path.exists() and record.exists()):
            if cached:
                continue
            wall, cpu = time.perf_counter(), cpu_seconds()
            with counting() as evaluations:
                image = make(name, ALL[name], content, style, folder, size)
            seconds = {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu,
                       "evaluations": evaluations[0]}
            save_image(image, path)
            record.write_text(json.dumps(seconds))
            print(f"{pair} {name}: {seconds['wall_s']:.1f} s wall, {seconds['cpu_s']:.1f} CPU s, "
                  f"{evaluations[0]} evaluations", flush=True)
        images[name] = load_image(path)
    return images


def table(pair: str, images: dict[str, np.ndarray], out: Path) -> list[str]:
    content, style = images["content image"], images["style image"]
    rows = [f"**{pair}** ({' <- '.join(PAIRS[pair])}, {content.shape[1]}x{content.shape[0]} px)", "",
            "| configuration | residual | flat | dL | swd | wall s | CPU s | evaluations |",
            "|---|---|---|---|---|---|---|---|"]
    for name, image in images.items():
        if name.endswith(" image"):
            continue
        s = scores(image, content, style)
        t = json.loads((out / pair / f"{name}.json").read_text())
        rows.append(f"| {name} | {s['residual']:.2f} | {s['flat']:.2f} | {s['dL']:.1f} | {s['swd']:.2f} "
                    f"| {t['wall_s']:.1f} | {t['cpu_s']:.1f} | {t.get('evaluations', '')} |")
    return rows + [""]


def sheet(all_images: dict[str, dict[str, np.ndarray]], path: Path, height: int = 150) -> None:
    """Per pair a row: content | style | each output, labelled."""
    rows = []
    for pair, images in all_images.items():
        tiles = []
        for name, image in images.items():
            tile = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
            tile = tile.resize((max(1, round(tile.width * height / tile.height)), height), Image.Resampling.LANCZOS)
            framed = Image.new("RGB", (tile.width + 4, height + 16), "white")
            framed.paste(tile, (2, 14))
            ImageDraw.Draw(framed).text((3, 1), f"{pair}: {name}" if not tiles else name, fill="black")
            tiles.append(framed)
        row = Image.new("RGB", (sum(t.width for t in tiles), height + 16), "white")
        x = 0
        for t in tiles:
            row.paste(t, (x, 0))
            x += t.width
        rows.append(row)
    picture = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        picture.paste(r, (0, y))
        y += r.height
    save_image(np.asarray(picture, np.float32) / 255.0, path)


def speed(size: int, run: tuple[str, ...] = ("--preset photo",)) -> list[str]:
    """The photo preset against the default run at ``size`` px (the night pair), in what survives contention:
    each plan's network work (GFLOP: every level's charged iterations times its evaluation); the runs named
    in ``run`` run for real (CPU and wall seconds, the network's evaluations counted); and the preset's
    steps outside the network (the start, the Laplacian, the smoothing of the start) alone."""
    import stylize
    from stylize.core.planning.plan import plan_cost
    from stylize.losses.affine import matting_laplacian, smooth
    from stylize.starts.colour import distribution
    content, style = (photo(name) for name in PAIRS["night"])
    lines = [f"Speed at {size} px (night pair, fp32, one thread):", "",
             "| run | levels (px x iterations) | network GFLOP | evaluations | CPU s | wall s |",
             "|---|---|---|---|---|---|"]
    for name, preset in (("default", None), ("--preset photo", "photo")):
        job = stylize.Job(content, style, preset=preset, length=size, checkpoint_every=0,
                          threads=NETWORK["threads"], options=NETWORK["options"])
        total = plan_cost(job.plan, job.estimate.level_flops, 0, job.plan.iterations) / 1e9
        levels = ", ".join(f"{max(level.shape)} x {level.iterations}" for level in job.plan.levels)
        measured = "|  |"  # not run: three empty cells
        if name in run:
            wall, cpu = time.perf_counter(), cpu_seconds()
            with counting() as evaluations:
                job.run()
            measured = f"{evaluations[0]} | {cpu_seconds() - cpu:.1f} | {time.perf_counter() - wall:.1f}"
        lines.append(f"| {name} | {levels} | {total:.0f} | {measured} |")
    work = resize(content, fit_long_side(content.shape[:2], size))
    small = resize(style, fit_long_side(style.shape[:2], size))
    lines += ["", "| preset step outside the network | wall s | CPU s |", "|---|---|---|"]
    made = {}
    for name, step in (("distribution start", lambda: distribution(work, small)),
                       ("matting Laplacian", lambda: matting_laplacian(work)),
                       ("smoothing (1e-4) of the start", lambda: smooth(made["distribution start"],
                                                                        made["matting Laplacian"], 1e-4))):
        wall, cpu = time.perf_counter(), cpu_seconds()
        made[name] = step()
        lines.append(f"| {name} | {time.perf_counter() - wall:.1f} | {cpu_seconds() - cpu:.1f} |")
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="long side of the outputs in pixels")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(ALL),
                        help="configurations to run (default: all but the tune-* candidates)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/photoreal"), help="kept outputs")
    parser.add_argument("--markdown", type=Path, help="write the tables there too")
    parser.add_argument("--sheet", type=Path, help="write the side-by-side sheet there (PNG)")
    parser.add_argument("--cached", action="store_true", help="tables and sheet of the kept outputs only")
    parser.add_argument("--speed", action="store_true",
                        help="instead: the photo preset's work against the default run's at --size (e.g. 512)")
    parser.add_argument("--run-default", action="store_true",
                        help="with --speed: run the default too, not only count its plan's work (minutes)")
    args = parser.parse_args(argv)
    if args.speed:
        print("\n".join(speed(args.size, ("--preset photo", "default") if args.run_default else ("--preset photo",))))
        return 0
    out = args.out / str(args.size)
    all_images = {pair: produce(pair, args.configs, args.size, out, args.cached) for pair in args.pairs}
    lines = [f"Scores at {args.size} px (residual, flat: 0-255 RMS of the local affine fit to the content, "
             "lower is more photo-like; dL: mean L* gap to the style; swd: Lab sliced Wasserstein distance to "
             "the style, lower has more of its tone).", ""]
    for pair, images in all_images.items():
        lines += table(pair, images, out)
    print("\n".join(lines))
    if args.markdown:
        from stylize.core.io.files import atomic_write
        with atomic_write(args.markdown) as f:
            f.write("\n".join(lines).encode())
    if args.sheet:
        sheet(all_images, args.sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
