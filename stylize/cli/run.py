"""``stylize run``: one style transfer from the command line, with a progress bar."""
from __future__ import annotations

import sys

import click

from stylize.core.run import checkpoint as checkpoints
from stylize.core.request.presets import BEST_ITERATIONS, DRAFT_ITERATIONS, PRESETS, QUALITIES

from .backend_options import BACKEND_OPTIONS, backend_options
from .config import configurable, load_config
from .progress import Progress
from .setting_options import parse_plugin_options, setting_options, settings_from_options

__all__ = ["BACKEND_OPTIONS", "parse_plugin_options", "run", "settings_from_options"]


@configurable  # outermost: gives every option its STYLIZE_* variable
@backend_options  # each installed backend's declared options, as flags (--pooling, --prototxt ...)
@setting_options()  # one option for each Settings field `stylize run` offers (its declaration says how)
@click.command()
# Input paths are checked by load_image, not by click, so that a directory or a
# missing file is a one-line ``stylize: error:`` like every other bad input.
@click.option("-c", "--content", required=True, type=click.Path(), metavar="FILE",
              help="Content image (a photo): its structure is kept.")
@click.option("-s", "--style", "styles", required=True, multiple=True, type=click.Path(), metavar="FILE",
              help="Style image (a painting): its textures and colours are transferred. Repeat "
                   "to blend several (see --style-weights).")
@click.option("--content-mask", type=click.Path(), default=None, metavar="FILE",
              help="Semantic mask of the content: one flat colour per region (sky, building...). "
                   "With --style-mask, each output region takes the style of the same colour's "
                   "region in the style images (Luan et al. 2017).")
@click.option("--style-mask", "style_masks", multiple=True, type=click.Path(), metavar="FILE",
              help="Semantic mask of a style image, same colours as --content-mask; one per -s, "
                   "in order. Content regions with no style region keep to the content.")
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
@click.option("-f", "--force", is_flag=True,
              help="Overwrite OUTPUT (and its numbered --save-every snapshots) if it exists; "
                   "without it an existing file is an error, checked before any work.")
@click.option("--set", "settings_", multiple=True, metavar="PLUGIN.KEY=VALUE",
              help="Option for a plugin, repeatable: e.g. --set adam.lr=2, --set tv.weight=1e5 "
                   "(every loss takes weight= and layers=). Values are numbers, true/false or text.")
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
        resume, quiet, preview, force, dry_run, **given):
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
    settings = settings_from_options(ctx, given, backend_given)
    job = Job(content, styles, settings, output=output, content_mask=content_mask,
              style_masks=style_masks or None, save_every=save_every, save_dir=save_dir,
              checkpoint_every=checkpoint_every, resume=resume)
    if dry_run:
        from stylize.core.run import plan_text
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
