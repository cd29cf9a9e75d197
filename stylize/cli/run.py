"""``stylize run``: one style transfer from the command line, with a progress bar."""
from __future__ import annotations

import math
import sys

import click

from stylize.core import checkpoint as checkpoints
from stylize.core.errors import UsageError

from stylize.core.pipeline import Settings
from stylize.core.presets import BEST_ITERATIONS, DRAFT_ITERATIONS, PRESETS, QUALITIES, quality
from stylize.core.schedule import LADDERS
from stylize.core.settings import merge_options

from .backend_options import BACKEND_OPTIONS, backend_options
from .config import configurable, load_config, plugin_items
from .progress import Progress

DEFAULTS = Settings()


@configurable  # outermost: gives every option its STYLIZE_* variable
@backend_options  # each installed backend's declared options, as flags (--pooling, --prototxt ...)
@click.command()
# Input paths are checked by load_image, not by click, so that a directory or a
# missing file is a one-line ``stylize: error:`` like every other bad input.
@click.option("-c", "--content", required=True, type=click.Path(), metavar="FILE",
              help="Content image (a photo): its structure is kept.")
@click.option("-s", "--style", "styles", required=True, multiple=True, type=click.Path(), metavar="FILE",
              help="Style image (a painting): its textures and colours are transferred. Repeat "
                   "to blend several (see --style-weights).")
@click.option("--style-weights", default=None, metavar="W1,W2",
              help="Blend weights of the -s images, in order, e.g. 3,1 (normalized; default equal).")
@click.option("--style-scale", type=float, default=DEFAULTS.style_scale, show_default=True,
              help="Size of the style images relative to the output: below 1 gives finer "
                   "strokes, above 1 larger ones.")
@click.option("--preserve-colors", is_flag=True,
              help="Keep the content's colours: transfer style on luminance only, then take "
                   "the colours of the content (Gatys et al. 2016).")
@click.option("--match-colors", is_flag=True,
              help="Recolour the style images to the content's colour mean and covariance "
                   "before the transfer (the other remedy of Gatys et al. 2016).")
@click.option("--content-mask", type=click.Path(), default=None, metavar="FILE",
              help="Semantic mask of the content: one flat colour per region (sky, building...). "
                   "With --style-mask, each output region takes the style of the same colour's "
                   "region in the style images (Luan et al. 2017).")
@click.option("--style-mask", "style_masks", multiple=True, type=click.Path(), metavar="FILE",
              help="Semantic mask of a style image, same colours as --content-mask; one per -s, "
                   "in order. Content regions with no style region keep to the content.")
@click.option("--mask-tolerance", type=float, default=DEFAULTS.mask_tolerance, show_default=True,
              help="Colour distance (0-255 RGB) under which mask colours count as one region "
                   "(absorbs JPEG noise).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="A recipe that fills in options you did not give. photo: photorealistic "
                   "transfer (gram + affine losses, content init, ratio 1e3).")
@click.option("--quality", type=click.Choice(list(QUALITIES)), default=None,
              help="How long to work on the picture; fills in -n (and other options you did not give). "
                   f"draft: a preview in about a seventh of normal's time (-n {DRAFT_ITERATIONS}); normal: the "
                   f"defaults; best: -n {BEST_ITERATIONS}, about 1.8x normal's time, for more style and "
                   f"less content error. README "
                   "\"Quality presets\" has each one's measured time and scores.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image, .png, .jpg or .tif; folders are created, written atomically.")
@click.option("--bit-depth", type=click.Choice([8, 16]), default=DEFAULTS.bit_depth, show_default=True,
              help="Bits per channel of the output and its snapshots. 16 (.png or .tif only; .jpg is refused "
                   "before any work) keeps the optimizer's full precision: 65536 levels instead of 256, no "
                   "banding in smooth areas when the picture is edited further.")
@click.option("-f", "--force", is_flag=True,
              help="Overwrite OUTPUT (and its numbered --save-every snapshots) if it exists; "
                   "without it an existing file is an error, checked before any work.")
@click.option("-b", "--backend", default=DEFAULTS.backend, show_default=True,
              help="Network backend plugin (entry-point group stylize.backends); "
                   "an unknown name lists the installed ones.")
@click.option("--loss", "losses", multiple=True, default=DEFAULTS.losses, show_default=True,
              help="Loss plugin; repeat for several. If none of them is a content term, "
                   "`content` joins automatically (Gatys transfer is content + style).")
@click.option("--optimizer", default=DEFAULTS.optimizer, show_default=True,
              help="Optimizer plugin.")
@click.option("-r", "--ratio", type=float, default=DEFAULTS.ratio, show_default=True,
              help="Style-to-content weight ratio; larger means more style. Means what the "
                   "reference's -r meant at 512x512 (its default was 1e4), at every --length "
                   "(content weight scales with 512^2/area).")
@click.option("-n", "--iterations", type=int, default=DEFAULTS.iterations, show_default=True,
              help="Optimizer iterations in total over all scales, halving from the coarsest and the "
                   "finest as many as the one before (2:1:1: 320 -> 160 at 128 px, 80 at 256, 80 at 512). "
                   "--quality sets it for you.")
@click.option("-l", "--length", type=int, default=DEFAULTS.length, show_default=True,
              help="Long side of the output in pixels (aspect kept); the style image is "
                   "scaled to the same long side.")
@click.option("-i", "--init", default=DEFAULTS.init, show_default=True,
              help="Starting image: a start's name (content, style, noise: pink, see --seed; fast: a feed-forward "
                   "picture, pip install 'stylize[fast]'; `stylize plugins` lists all) or an image path. "
                   "Options: --set NAME.KEY=VALUE (fast.level=-1 starts at the finest level).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Random seed for --init noise (same seed, same output).")
@click.option("--scales", type=int, default=None,
              help="Coarse-to-fine levels, each twice the size of the last; 1 turns it off. "
                   "Default: halve while the smallest stays >= 128 px (512 -> 128, 256, 512); -n is split 2:1:1 "
                   "over them.")
@click.option("--ladder", type=click.Choice(list(LADDERS)), default=DEFAULTS.ladder, show_default=True,
              help="Steps between the coarse-to-fine scales' lengths. octave: each twice the last (512 -> 128, "
                   "256, 512); sqrt2: sqrt(2) times (512 -> 128, 181, 256, 362, 512), smaller steps from one "
                   "scale's result to the next, -n split the same way (each scale sqrt(2) times fewer "
                   "iterations than the one before, the finest as many as the one before it).")
@click.option("--tol", type=float, default=DEFAULTS.tol, show_default=True,
              help="Stop a scale (and, at the last one, the run) once the loss fell by less than this "
                   "fraction over the last 20 iterations: the picture has stopped changing. 0 runs every "
                   "iteration.")
@click.option("--content-layers", default=None, metavar="L1,L2",
              help="Layers for content terms (default: the backend's, conv4_2 for VGG).")
@click.option("--style-layers", default=None, metavar="L1,L2",
              help="Layers for style terms (default: the backend's, conv1_1..conv5_1 for VGG).")
@click.option("--set", "settings_", multiple=True, metavar="PLUGIN.KEY=VALUE",
              help="Option for a plugin, repeatable: e.g. --set adam.lr=2, --set tv.weight=1e5 "
                   "(every loss takes weight= and layers=). Values are numbers, true/false or text.")
@click.option("-g", "--gpu", type=int, default=DEFAULTS.gpu, show_default=True,
              help="GPU id, -1 for the CPU. A GPU needs the CUDA build of pycaffe (make setup-gpu); "
                   "the CPU-only build refuses it.")
@click.option("--save-every", type=click.IntRange(min=1), default=None, metavar="N",
              help="Also write the image every N iterations, numbered next to the output "
                   "(out-0050.png, ...) or in --save-dir, to watch the run or stop it early.")
@click.option("--save-dir", type=click.Path(), default=None, metavar="DIR",
              help="Write the --save-every snapshots into DIR (created) instead of next to the output.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=checkpoints.EVERY, show_default=True,
              metavar="N",
              help="Every N iterations, and on Ctrl-C, write a checkpoint OUTPUT.checkpoint.npz "
                   "(atomically; removed when the run finishes) for --resume; 0 turns it off.")
@click.option("--resume", is_flag=True,
              help="Continue from OUTPUT's checkpoint after a crash, a kill or Ctrl-C. Options and "
                   "input images must be those of the interrupted run; without a checkpoint the "
                   "run starts from the beginning.")
@click.option("--config", type=click.Path(), default=None, metavar="FILE.toml", is_eager=True,
              expose_value=False, callback=load_config, envvar="STYLIZE_CONFIG",
              help="Read options from a TOML file (keys: long option names, e.g. iterations = 300, "
                   "style = [\"a.jpg\", \"b.jpg\"]). The command line beats STYLIZE_<OPTION> "
                   "environment variables (e.g. STYLIZE_ITERATIONS=300), which beat the file.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="BLAS threads (default: OpenBLAS's own choice, all cores unless "
                   "OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set).")
@click.option("--tile-size", default=str(DEFAULTS.tile_size), show_default=True, metavar="auto|off|N",
              help="Evaluate the network on tiles, so that any size fits in memory, with the same result "
                   "(exact: each tile adds a halo of the network's receptive field, 80 px for VGG19, and "
                   "Gram matrices are summed over tiles; each evaluation costs more). auto: tile only a "
                   "scale whose whole image would not fit the memory limit, with the cheapest tiles that "
                   "fit; N: tiles of at most N x N px; off: never (a run that does not fit is refused).")
@click.option("--scheduler", "cluster", default=None, metavar="ADDRESS",
              help="A Dask scheduler (e.g. tcp://10.0.0.5:8786): the tiles of every tiled scale's evaluations "
                   "run on its workers (each loads the network once), the optimizer and the image stay here; "
                   "same result as the tiled run here. Scales evaluated whole run here. Workers need the same "
                   "stylize version and the network's files at the same paths. See docs/cluster.md.")
@click.option("--dry-run", is_flag=True,
              help="Print the run's plan and exit without running: each scale's size, iterations, evaluation "
                   "(whole or its tiles), optimizer, arithmetic, expected memory, GFLOP per evaluation and "
                   "seconds per iteration, and the whole run's time and memory (loads the network; a run that "
                   "cannot fit is refused as it would be).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--preview", is_flag=True,
              help="Serve a live preview page of this run on 127.0.0.1 (its URL is printed): the picture "
                   "as it forms, the loss per term, the scale and the ETA.")
@click.pass_context
def run(ctx, content, styles, output, content_mask, style_masks, save_every, save_dir, checkpoint_every,
        resume, quiet, preview, force, dry_run, cluster, **given):
    """Stylize CONTENT with STYLE and write OUTPUT.

    Ctrl-C stops the run and writes the image reached so far to OUTPUT, and a
    checkpoint that --resume continues from. Every option can also be set by
    a STYLIZE_<OPTION> environment variable (STYLIZE_ITERATIONS=300,
    STYLIZE_LOSS="gram tv") or in a --config TOML file.
    """
    from stylize.api import Interrupted, Job

    from .checks import check_conflicts, check_output

    backend_given = {name: given.pop(name) for name in list(given) if name in BACKEND_OPTIONS}
    check_conflicts(output, [content, *styles, content_mask, *style_masks, given["init"]])
    if not dry_run:  # a plan writes nothing: an existing output is no reason to refuse it
        check_output(output, force=force, resume=resume, save_every=save_every, save_dir=save_dir)
    # Named, not among the settings a batch copies: `stylize batch` has a --scheduler of its own (its jobs').
    settings = settings_from_options(ctx, {**given, "scheduler": cluster}, backend_given)
    job = Job(content, styles, settings, output=output, content_mask=content_mask,
              style_masks=style_masks or None, save_every=save_every, save_dir=save_dir,
              checkpoint_every=checkpoint_every, resume=resume)
    if dry_run:
        from stylize.core import plan_text
        job.estimate  # the complete plan: loads the network, refuses what cannot fit
        click.echo("\n".join([plan_text.summary(job.plan, job.first_step), *plan_text.table(job.plan)]))
        return
    iterations = settings.iterations
    if not quiet:
        if job.resumed is not None:
            click.echo(f"resuming from iteration {job.resumed.step}/{iterations} ({job.checkpoint_path})",
                       err=True)
        elif resume:
            click.echo(f"no checkpoint at {job.checkpoint_path}; starting from the beginning", err=True)
        elif job.replaces_checkpoint:
            click.echo(f"note: this run replaces the checkpoint {job.checkpoint_path} of an earlier run "
                       "(--resume would continue it)", err=True)
    from stylize.serve import preview_server
    try:
        with preview_server(job, enabled=preview) as page, Progress(quiet) as progress:
            image = job.run(page.watch(progress), preview_every=page.every)
    except Interrupted as e:
        resumable = "; --resume continues from there" if checkpoint_every else ""
        click.echo(f"stylize: interrupted at iteration {e.step}/{iterations}; wrote {output}{resumable}",
                   err=True)
        sys.exit(130)
    if not quiet:
        click.echo(f"wrote {output} ({image.shape[1]}x{image.shape[0]}, {progress.seconds:.0f} s)", err=True)


def settings_from_options(ctx: click.Context, given: dict, backend_given: dict) -> Settings:
    """Settings from the options; a preset and a quality fill in only what the user left at its default.

    Backend flags join the ``--set`` options of the chosen backend; one the
    backend does not declare is refused by ``Settings.validate`` like any
    unknown plugin option.
    """
    name, level = given.pop("preset"), given.pop("quality", None)
    for key, value in {**(PRESETS[name] if name else {}), **quality(level)}.items():  # --quality says how long
        if ctx.get_parameter_source(key) is click.core.ParameterSource.DEFAULT:
            given[key] = value
    options = parse_plugin_options(plugin_items(ctx, given.pop("settings_")))
    options = merge_options(PRESETS[name].get("options", {}) if name else {}, options,  # the user's --set wins
                            [given["backend"], given["optimizer"], given["init"], *given["losses"]])
    flags = {key: value for key, value in backend_given.items()
             if ctx.get_parameter_source(key) is not click.core.ParameterSource.DEFAULT}
    if flags:
        options[given["backend"]] = {**options.get(given["backend"], {}), **flags}
    for key in ("content_layers", "style_layers"):
        given[key] = _layers(given[key])
    weights = given.pop("style_weights")
    return Settings(**given, options=options, style_weights=None if weights is None else _numbers(weights))


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--style-weights {text!r}: expected numbers separated by commas, e.g. 3,1") from None


def _layers(text: str | None) -> list[str] | None:
    return [part for part in text.replace(",", " ").split()] if text else None


def parse_plugin_options(items) -> dict[str, dict]:
    """``["adam.lr=2", "tv.weight=1e5"]`` -> ``{"adam": {"lr": 2}, "tv": {"weight": 100000.0}}``."""
    options: dict[str, dict] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (name and dot and key and eq):
            raise UsageError(f"--set {item!r}: expected PLUGIN.KEY=VALUE, e.g. --set adam.lr=2")
        parsed = _value(value)
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise UsageError(f"--set {item!r}: {value} is not a finite number")
        options.setdefault(name, {})[key.replace("-", "_")] = parsed
    return options


def _value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
