"""``stylize video``: a video (or a folder of frames) stylized with temporal consistency, from the command line.

A thin consumer of ``stylize.video.VideoJob``. Every option of ``stylize
run`` that makes sense for frames is taken over from it (the same names,
defaults, help, ``--config`` keys and ``STYLIZE_*`` variables), so the two
commands cannot drift apart; the video's own options come first.
"""
from __future__ import annotations

import copy
import sys

import click

from stylize.core.errors import UsageError
from stylize.core.request.fields import VIDEO, offered_by
from stylize.core.request.settings import Settings

from .backend_options import BACKEND_OPTIONS
from .checks import check_conflicts
from .config import configurable
from .progress import duration
from .run import run as run_command
from .setting_options import settings_from_options

#: ``stylize run`` options taken over: those of the Settings fields that declare video among their drivers,
#: --preset, --quality, --set, the backend flags, --config and -q. Not the single content image and its masks,
#: the output image, its snapshots and checkpoints (the work folder replaces them), its --force (ours also
#: covers the work folder), nor options of runs only (--resume, --preview ...).
TAKEN = set(offered_by(Settings, VIDEO)) | {"styles", "preset", "quality", "settings_", "quiet"}


def _taken(param: click.Parameter) -> bool:
    return param.name in TAKEN or param.name in BACKEND_OPTIONS or param.name == "config"


@click.command()
@click.argument("source", type=click.Path(), metavar="INPUT")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output video: .mp4, .mkv, .mov (H.264), .webm (VP9) or .gif, at the source's frame rate "
                   "and with its audio. Frames are kept in OUTPUT.work/ next to it until it is written.")
@click.option("-f", "--force", is_flag=True,
              help="Overwrite OUTPUT, and start over if OUTPUT.work/ holds frames of a run with other inputs "
                   "or settings (without it both are errors, found before any work).")
@click.option("--frames", "frame_range", default=None, metavar="A:B",
              help="Stylize only frames A to B (numbered from 1, both included; A: or :B leave a side open). "
                   "The video holds those frames, with the matching audio.")
@click.option("--frame-iterations", type=click.IntRange(min=1), default=None, metavar="N",
              help="Iterations of each frame after the first of its shot, which starts from the previous "
                   "output warped by the optical flow and so needs fewer. Default: --iterations.")
@click.option("--temporal-weight", type=float, default=None,
              help="Weight of the temporal loss (per 512x512 pixels, as image terms): how hard each frame "
                   "keeps to the previous output where the flow is reliable. Default: the paper's "
                   "200 x the content weight, 1.73e7.")
@click.option("--independent", is_flag=True,
              help="Stylize each frame on its own (no flow, no temporal loss, --iterations each): the "
                   "flickering frame-by-frame method, for comparison.")
@click.option("--fps", type=float, default=None,
              help="Frame rate of the output; default the video's own, or 25 for a folder of images.")
@click.option("--keep-work", is_flag=True,
              help="Keep OUTPUT.work/ (source frames, flow, masks, stylized frames) after writing the video.")
@click.pass_context
def video(ctx, source, output, force, frame_range, frame_iterations, temporal_weight, independent, fps, keep_work,
          quiet, **given):
    """Stylize the video INPUT (or a folder of frames) with STYLE into OUTPUT, frame by frame, consistently.

    Each frame after the first of a shot starts from the previous output
    carried along the optical flow and keeps to it through the temporal loss
    (Ruder et al. 2016), so the picture does not flicker. A frame the flow
    cannot follow (a cut) starts a new shot. Interrupted (Ctrl-C, a crash),
    the same command continues at the first unfinished frame. The options
    shared with `stylize run` apply to every frame; --init, --scales and
    --iterations to the first frame of each shot.
    """
    from stylize.api import Interrupted
    from stylize.video import VideoJob

    backend_given = {name: given.pop(name) for name in list(given) if name in BACKEND_OPTIONS}
    check_conflicts(output, [source, *given["styles"], given["init"]])
    styles = given.pop("styles")
    settings = settings_from_options(ctx, given, backend_given)
    job = VideoJob(source, styles, output, settings, frames=_frames(frame_range), frame_iterations=frame_iterations,
                   independent=independent, temporal_weight=temporal_weight, fps=fps, force=force,
                   keep_work=keep_work)
    report = _Report(quiet)
    try:
        job.run(report)
    except Interrupted:
        click.echo(f"stylize: interrupted at frame {report.frame}; run the same command again to continue there",
                   err=True)
        sys.exit(130)


def _frames(text: str | None) -> tuple[int | None, int | None] | None:
    if text is None:
        return None
    first, colon, last = text.partition(":")
    try:
        if not colon:
            raise ValueError
        return (int(first) if first.strip() else None, int(last) if last.strip() else None)
    except ValueError:
        raise UsageError(f"--frames {text!r}: expected A:B with frame numbers from 1, e.g. 1:24, 10: or :48") \
            from None


class _Report:
    """One line per frame on stderr: time, kind and the ETA of the rest; the Job's own steps are not shown."""

    def __init__(self, quiet: bool):
        self.quiet, self.frame = quiet, 0

    def __call__(self, event) -> None:
        from stylize.video import events

        if isinstance(event, events.FrameStarted):
            self.frame = event.frame
        if self.quiet:
            return
        if isinstance(event, events.FramesReady):
            cuts = len(event.shot_starts) - 1
            done = f"; {event.done} already done" if event.done else ""
            click.echo(f"frames {event.first}-{event.last}: {len(event.shot_starts)} shot start(s)"
                       f"{f' ({cuts} cut(s) found by the flow)' if cuts > 0 else ''}{done}", err=True)
        elif isinstance(event, events.FrameFinished) and not event.skipped:
            eta = f", eta {duration(event.eta)}" if event.eta is not None else ""
            click.echo(f"frame {event.frame}/{event.last}: {duration(event.seconds)}{eta}", err=True)
        elif isinstance(event, events.VideoFinished):
            click.echo(f"wrote {event.output} ({event.frames} frames, {duration(event.seconds)})", err=True)


video.params.extend(copy.copy(param) for param in run_command.params if _taken(param))
configurable(video)
