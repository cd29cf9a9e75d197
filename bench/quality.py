#!/usr/bin/env python3
"""Time to a good picture: named run configurations on content/style pairs, scored along each run.

What a user waits for is a good picture, not a low objective: this bench
runs each configuration (a schedule and settings) on each pair through the
Job API, each run in its own process as ``stylize run`` would, and keeps the
image at checkpoints along the run with its wall time (the time spent saving
those images is measured and taken off). Afterwards, in separate processes,
every kept image is scored at the run's output size on two networks: VGG19
with max pooling (the weights the run optimizes, the other pooling) and
EfficientNet-Lite0 (PyTorch, ``make bench-quality-setup``), which nothing in
stylize optimizes. Scores are relative errors, lower is better: style, the
Frobenius error of the Gram matrices against the style image's, averaged over
layers; content, the error of one deep layer's features against the content
image's (``quality_score.py``).

Printed: per pair and configuration the time and the four scores at each
checkpoint; a summary per pair against a reference configuration (its
final scores, and when each configuration first reaches all of them); JSON
and plots (quality against time per pair, the style/content fronts of
configurations that differ only in ``ratio``) go into the work folder.
Finished runs and scores in the work folder are reused by a rerun.

    .venv/bin/python bench/quality.py --pairs astronaut-scream --length 128 \\
        --config "default:iterations=40" --config "single:scales=1,iterations=20"

A configuration is ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE...`` (``--help``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMAGES = ROOT / "examples" / "images"

#: Content/style pairs: a path, or ``skimage:NAME`` for a photo scikit-image ships. The first is the
#: demo pair (``make demo``); rocket is the issue's held-out photo (640x427).
PAIRS = {
    "astronaut-scream": (str(IMAGES / "astronaut.jpg"), str(IMAGES / "the_scream.jpg")),
    "rocket-shipwreck": ("skimage:rocket", str(IMAGES / "shipwreck.jpg")),
    "chelsea-shipwreck": ("skimage:chelsea", str(IMAGES / "shipwreck.jpg")),
    "coffee-scream": ("skimage:coffee", str(IMAGES / "the_scream.jpg")),
}
DEFAULT_PAIRS = ("astronaut-scream", "rocket-shipwreck", "chelsea-shipwreck")
#: The scoring networks, in the order the tables show them.
NETWORKS = ("vgg", "effnet")
SCORES = ("style", "content")

#: Keys of a configuration that are not ``Settings`` fields; everything else with a dot is a plugin option.
_LEVELS, _POOLING = "levels", "pooling"
#: Run-wide, not per configuration: given once on the command line.
_GLOBAL = {"length": "--length", "threads": "--threads"}
#: Settings fields that take several names: ``+`` separates them in a configuration (``losses=gram+tv``).
_LIST_FIELDS = ("losses", "content_layers", "style_layers", "style_weights")


class ConfigError(ValueError):
    """A configuration or pair on the command line that cannot be used (one line, exit 2)."""


@dataclass(frozen=True)
class Config:
    """A named run configuration: ``Settings`` fields, plugin options and an optional per-level split."""

    name: str
    settings: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    levels: tuple[int, ...] | None = None
    spec: str = ""


def parse_config(spec: str) -> Config:
    """``NAME`` or ``NAME:KEY=VALUE,...`` -> Config; ConfigError on bad syntax.

    Keys: a ``Settings`` field (``iterations=160``, ``scales=1``, ``ratio=1e3``,
    ``tol=1e-3``, ``losses=gram+tv``); ``pooling=max|avg`` (the backend's
    option); ``levels=N1:N2:...`` (iterations per coarse-to-fine level, coarse
    first: sets ``scales`` and ``iterations``); ``PLUGIN.KEY=VALUE``
    (``lbfgs.history=20``). Values are numbers, true/false or text.
    """
    from stylize.cli.run import parse_plugin_options
    from stylize.core.request.settings import Settings

    name, colon, rest = spec.partition(":")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise ConfigError(f"--config {spec!r}: a name of letters, digits, _ . + - first "
                          "(it names a folder), e.g. default or single:scales=1")
    items = [item.strip() for item in rest.split(",") if item.strip()] if colon else []
    if colon and not items:
        raise ConfigError(f"--config {spec!r}: nothing after ':'; give KEY=VALUE,... or just the name")
    settings, plugin_items, levels, pooling = {}, [], None, None
    for item in items:
        key, eq, value = item.partition("=")
        plugin, dot, field = key.strip().rpartition(".")  # a plugin's name keeps its hyphens (caffe-vgg19)
        key, value = plugin + dot + field.replace("-", "_"), value.strip()
        if not (key and eq and value):
            raise ConfigError(f"--config {spec!r}: {item!r} is not KEY=VALUE")
        if key in _GLOBAL:
            raise ConfigError(f"--config {spec!r}: {key} is the same for every run; give {_GLOBAL[key]} instead")
        if key == _LEVELS:
            levels = _levels(spec, value)
        elif key == _POOLING:
            pooling = value
        elif key in _LIST_FIELDS:
            settings[key] = [_number(part) if key == "style_weights" else part for part in value.split("+")]
        else:  # a Settings field goes through the same parser as a plugin option, as "settings.KEY"
            plugin_items.append(f"{key}={value}" if "." in key else f"settings.{key}={value}")
    try:
        options = parse_plugin_options(plugin_items)
    except Exception as e:  # UsageError: one line already
        raise ConfigError(f"--config {spec!r}: {e}") from None
    settings.update(options.pop("settings", {}))
    if pooling is not None:
        options.setdefault(settings.get("backend", Settings.backend), {})[_POOLING] = pooling
    if levels is not None:
        for key, wanted in (("scales", len(levels)), ("iterations", sum(levels))):
            if settings.get(key, wanted) != wanted:
                raise ConfigError(f"--config {spec!r}: {key}={settings[key]} disagrees with levels={rest} "
                                  f"({wanted}); give one of them")
            settings[key] = wanted
    return Config(name, settings, options, levels, spec)


def _levels(spec: str, value: str) -> tuple[int, ...]:
    parts = value.split(":")
    if not all(part.isdigit() for part in parts) or sum(int(p) for p in parts) < 1:
        raise ConfigError(f"--config {spec!r}: levels={value}: iterations per level, coarse first, "
                          "e.g. levels=100:60:30")
    return tuple(int(p) for p in parts)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number") from None


def parse_configs(specs: list[str]) -> list[Config]:
    """Every ``--config``, names unique; ``["default"]`` when none is given."""
    configs = [parse_config(spec) for spec in specs or ["default"]]
    seen = set()
    for config in configs:
        if config.name in seen:
            raise ConfigError(f"--config {config.name}: the name is given twice")
        seen.add(config.name)
    return configs


def ratio_sweep(reference: Config, ratios: list[float], poolings: list[str]) -> list[Config]:
    """``--ratios``: the reference configuration at each ratio and pooling (the fronts' points)."""
    given = reference.spec.partition(":")[2]
    return [parse_config(f"{pooling}-r{ratio:g}:{given + ',' if given else ''}pooling={pooling},ratio={ratio:g}")
            for pooling in poolings for ratio in ratios]


def parse_pair(spec: str) -> tuple[str, tuple[str, str]]:
    """``NAME`` (one of PAIRS) or ``NAME=CONTENT,STYLE`` (paths or skimage:NAME)."""
    name, eq, rest = spec.partition("=")
    if not eq:
        if spec not in PAIRS:
            raise ConfigError(f"--pairs {spec}: not one of {', '.join(PAIRS)} (or give NAME=CONTENT,STYLE)")
        return spec, PAIRS[spec]
    content, comma, style = rest.partition(",")
    if not (re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name) and content and comma and style):
        raise ConfigError(f"--pairs {spec!r}: give NAME=CONTENT,STYLE (paths, or skimage:NAME for the content)")
    return name, (content, style)


# -- what the tables say -------------------------------------------------------------------------


def meets(scores: dict, target: dict, networks=NETWORKS) -> bool:
    """Every score of ``networks`` at most the target's (lower is better); False where one is missing."""
    for network in networks:
        for kind in SCORES:
            value, wanted = scores.get(network, {}).get(kind), target.get(network, {}).get(kind)
            if value is None or wanted is None or value > wanted:
                return False
    return True


def time_to_reach(points: list[dict], target: dict, networks=NETWORKS) -> float | None:
    """The wall time of the first point (in time order) whose scores meet ``target`` on ``networks``; None: never.

    A point is ``{"t": seconds, "scores": {network: {"style": e, "content": e}}}``.
    """
    for point in sorted(points, key=lambda p: p["t"]):
        if meets(point["scores"], target, networks):
            return point["t"]
    return None


# -- the work folder -----------------------------------------------------------------------------


def run_folder(work: Path, pair: str, config: Config) -> Path:
    return work / "runs" / pair / config.name


def materialize(work: Path, source: str) -> str:
    """A path a child process can read: ``skimage:NAME`` is written once into the work folder as PNG."""
    if not source.startswith("skimage:"):
        return str(Path(source).resolve())
    name = source.partition(":")[2]
    path = work / "inputs" / f"{name}.png"
    if not path.exists():
        from skimage import data

        from stylize.core.io.images import save_image
        save_image(getattr(data, name)().astype("float32") / 255.0, path)
    return str(path.resolve())


def finished_run(folder: Path, key: dict) -> dict | None:
    """The run recorded in ``folder`` if it finished with the same configuration key."""
    try:
        record = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("key") == key and record.get("finished") else None


def child(script: str, *args: str) -> int:
    """Run a bench script in a fresh interpreter (its own thread pools and memory); its output passes through."""
    return subprocess.run([sys.executable, str(HERE / script), *args], cwd=ROOT).returncode


def checked_run(content: str, style: str, config: Config, args) -> dict:
    """The run's levels and effective settings, from a Job made here (no network loaded).

    A bad setting is refused before any run starts. The effective settings
    (defaults filled in, the backend's declared option defaults too) are what
    a finished run is matched on: if stylize's defaults change, a ``default``
    run is run again, and two configurations that mean the same run once.
    """
    import dataclasses

    from stylize import Job
    from stylize.core import plugins

    from stylize.core.errors import StylizeError, one_line

    settings = dict(config.settings, length=args.length, threads=args.threads, options=config.options)
    try:
        job = Job(content, style, checkpoint_every=0, level_iterations=config.levels, **settings)
    except (StylizeError, TypeError) as e:  # TypeError: a key that is no setting ("did you mean ...")
        raise ConfigError(f"--config {config.spec!r}: {one_line(e)}") from None
    effective = dataclasses.asdict(job.settings)
    for name in ("length", "threads"):  # run-wide, and in the key below
        effective.pop(name)
    declared = {o.name: o.default for o in plugins.load("stylize.backends", job.settings.backend).options
                if o.default is not None}
    effective["options"][job.settings.backend] = {**declared, **effective["options"].get(job.settings.backend, {})}
    levels = [level.iterations for level in job.plan.levels]
    key = {"settings": effective, "levels": levels, "length": args.length, "threads": args.threads,
           "every": args.every}
    return {"key": json.loads(json.dumps(key, sort_keys=True)),
            "levels": [{"length": level.length, "shape": list(level.shape), "iterations": level.iterations,
                        "first_step": level.first_step} for level in job.plan.levels]}


def without(key: dict, name: str) -> str:
    """An effective key without one setting, as text: runs equal here differ only in ``name`` (a front)."""
    return json.dumps({**key, "settings": {k: v for k, v in key["settings"].items() if k != name}},
                      sort_keys=True)


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configuration keys: a Settings field (iterations=160, scales=1, ratio=1e3, tol=1e-3, "
               "init=noise, losses=gram+tv), pooling=max|avg, levels=N1:N2:... (iterations per level, "
               "coarse first), PLUGIN.KEY=VALUE (lbfgs.history=20). 'default' alone is today's defaults.")
    parser.add_argument("--config", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                        help="a run configuration, repeatable (default: just 'default')")
    parser.add_argument("--ratios", nargs="*", type=float, default=[], metavar="R",
                        help="also run the reference configuration at each of these ratios, once per --poolings "
                             "(configurations avg-r1000, max-r1000, ...; one equal to an earlier configuration "
                             "is not run twice): the fronts' points")
    parser.add_argument("--poolings", nargs="+", default=["avg", "max"], choices=("avg", "max"),
                        help="the poolings --ratios sweeps (default: both)")
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), metavar="PAIR",
                        help=f"content/style pairs: {', '.join(PAIRS)}, or NAME=CONTENT,STYLE "
                             f"(default: {' '.join(DEFAULT_PAIRS)})")
    parser.add_argument("--reference", default=None, metavar="NAME",
                        help="the configuration others are compared with (default: the first --config)")
    parser.add_argument("--length", type=int, default=512, help="long side of every output, px (default 512)")
    parser.add_argument("--every", type=int, default=8,
                        help="keep the image every N iterations of the last level, and at each level's end "
                             "(default 8)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads of each run (stylize run's)")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "quality",
                        help="work folder: runs, images, scores, quality.json and the plots (default out/quality)")
    parser.add_argument("--rerun", nargs="*", default=None, metavar="NAME",
                        help="run these configurations again even if finished (no names: all)")
    parser.add_argument("--no-plots", action="store_true", help="tables and JSON only (no matplotlib)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="the times the tables compare: wall seconds, or the runs' CPU seconds (user + system, "
                             "all threads: what a run cost while other work shared the machine; use with --threads 1)")
    args = parser.parse_args(argv)

    try:
        configs = parse_configs(args.config)
        pairs = dict(parse_pair(spec) for spec in args.pairs)
        named = {c.name: c for c in configs}
        reference = args.reference or configs[0].name
        if reference not in named:
            raise ConfigError(f"--reference {reference}: not one of the configurations ({', '.join(named)})")
        sweep = [c for c in ratio_sweep(named[reference], args.ratios, args.poolings) if c.name not in named]
        configs, swept = configs + sweep, {c.name for c in sweep}
        if args.every < 1:
            raise ConfigError(f"--every {args.every}: give 1 or more")
    except ConfigError as e:
        print(f"quality: error: {e}", file=sys.stderr)
        return 2

    from stylize.core.errors import StylizeError, one_line

    work = args.work.resolve()
    try:
        inputs = {name: (materialize(work, c), materialize(work, s)) for name, (c, s) in pairs.items()}
        runs = {(pair, config.name): checked_run(*inputs[pair], config, args)
                for pair in pairs for config in configs}
    except (ConfigError, StylizeError) as e:
        print(f"quality: error: {one_line(e)}", file=sys.stderr)
        return 2
    configs = drop_repeats(configs, {c.name: runs[next(iter(pairs)), c.name]["key"] for c in configs}, swept)

    failed = []
    for pair in pairs:
        for config in configs:
            folder, key = run_folder(work, pair, config), runs[pair, config.name]["key"]
            again = args.rerun is not None and (not args.rerun or config.name in args.rerun)
            if not again and finished_run(folder, key) is not None:
                print(f"== {pair} / {config.name}: finished before, reused", flush=True)
                continue
            spec = {"content": inputs[pair][0], "style": inputs[pair][1], "key": key, "pair": pair,
                    "config": config.name, "spec": config.spec}
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():  # another run's images and scores (the folder is this bench's own)
                old.unlink()
            (folder / "spec.json").write_text(json.dumps(spec, indent=2))
            print(f"== {pair} / {config.name}: running ({config.spec})", flush=True)
            if child("quality_run.py", str(folder)) != 0 or finished_run(folder, key) is None:
                failed.append(f"{pair}/{config.name}")

    done = [str(run_folder(work, pair, c)) for pair in pairs for c in configs
            if finished_run(run_folder(work, pair, c), runs[pair, c.name]["key"]) is not None]
    for network in NETWORKS:
        if done and child("quality_score.py", network, *done) != 0:
            failed.append(f"scoring on {network}")

    from quality_report import report
    report(work, list(pairs), configs, reference, runs, machine(), vars(args),
           curves=[c.name for c in configs if c.name not in swept], plots=not args.no_plots, clock=args.clock)
    if failed:
        print(f"\nquality: failed: {', '.join(failed)} (see above); a rerun retries them", file=sys.stderr)
    return 1 if failed else 0


def drop_repeats(configs: list[Config], keys: dict[str, dict], swept: set[str]) -> list[Config]:
    """The configurations without the ``--ratios`` points that repeat an earlier one (default's ratio and pooling)."""
    kept, seen = [], []
    for config in configs:
        if config.name in swept and keys[config.name] in seen:
            continue
        kept.append(config)
        seen.append(keys[config.name])
    return kept


def machine() -> dict:
    """Where and when: the figures mean little without the machine and its load."""
    from speed import cpu_model
    return {"cpu": cpu_model() or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "load_at_report": os.getloadavg()}


if __name__ == "__main__":
    sys.exit(main())
