"""``stylize run``: one style transfer from the command line, with a progress bar."""
from __future__ import annotations

import sys
import time

import click

from stylize.core.pipeline import Settings

DEFAULTS = Settings()


@click.command()
# Input paths are checked by load_image, not by click, so that a directory or a
# missing file is a one-line ``stylize: error:`` like every other bad input.
@click.option("-c", "--content", required=True, type=click.Path(), metavar="FILE",
              help="Content image (a photo): its structure is kept.")
@click.option("-s", "--style", required=True, type=click.Path(), metavar="FILE",
              help="Style image (a painting): its textures and colours are transferred.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image, .png or .jpg; folders are created, written atomically.")
@click.option("-b", "--backend", default=DEFAULTS.backend, show_default=True,
              help="Network backend plugin (entry-point group stylize.backends); "
                   "an unknown name lists the installed ones.")
@click.option("--loss", "losses", multiple=True, default=DEFAULTS.losses, show_default=True,
              help="Loss plugin; repeat for several. If none of them is a content term, "
                   "`content` joins automatically (Gatys transfer is content + style).")
@click.option("--optimizer", default=DEFAULTS.optimizer, show_default=True,
              help="Optimizer plugin.")
@click.option("-r", "--ratio", type=float, default=DEFAULTS.ratio, show_default=True,
              help="Style-to-content weight ratio; larger means more style.")
@click.option("-n", "--iterations", type=int, default=DEFAULTS.iterations, show_default=True,
              help="Optimizer iterations.")
@click.option("-l", "--length", type=int, default=DEFAULTS.length, show_default=True,
              help="Long side of the output in pixels (aspect kept); the style image is "
                   "scaled to the same long side.")
@click.option("-i", "--init", default=DEFAULTS.init, show_default=True,
              help="Starting image: content, style, noise (pink noise, see --seed) or an image path.")
@click.option("--seed", type=int, default=None, help="Random seed for --init noise (same seed, same output).")
@click.option("--pooling", type=click.Choice(["avg", "max"]), default="avg", show_default=True,
              help="Pooling in VGG backends: average (Gatys' choice, smoother) or max.")
@click.option("-g", "--gpu", type=int, default=DEFAULTS.gpu, show_default=True,
              help="GPU id, -1 for CPU. This pycaffe is a CPU-only build.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(content, style, output, backend, losses, optimizer, ratio, iterations, length, init, seed,
        pooling, gpu, quiet):
    """Stylize CONTENT with STYLE and write OUTPUT."""
    from stylize.core.images import check_output_path, save_image
    from stylize.core.pipeline import load_inputs, transfer

    settings = Settings(backend=backend, losses=losses, optimizer=optimizer, ratio=ratio,
                        iterations=iterations, length=length, init=init, seed=seed, gpu=gpu,
                        backend_options={"pooling": pooling})
    settings.validate()  # ranges and plugin names, before any image is read
    check_output_path(output)
    content_image, style_image = load_inputs(content, style, length)
    started = time.monotonic()
    with _progress(iterations, quiet) as report:
        image = transfer(content_image, style_image, settings, callback=report)
    path = save_image(image, output, metadata=_metadata(settings, content, style))
    if not quiet:
        click.echo(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, "
                   f"{time.monotonic() - started:.0f} s)", err=True)


def _metadata(settings: Settings, content: str, style: str) -> dict[str, str]:
    return {"Software": "stylize", "stylize:content": content, "stylize:style": style,
            "stylize:settings": repr(settings)}


class _progress:
    """A progress bar with iteration, loss and ETA, fed by the pipeline's callback.

    The bar starts at the first iteration, so an error while loading the
    network or the weights is the only line on stderr.
    """

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.value, self.bar = total, quiet, None, None

    def __enter__(self):
        if self.quiet:
            return lambda result: None
        return self.update

    def _describe(self, _item) -> str | None:
        return None if self.value is None else f"loss {self.value:.4g}"

    def update(self, result) -> None:
        self.value = result.value
        if self.bar is None:
            self.bar = click.progressbar(length=self.total, label="stylizing", file=sys.stderr,
                                         show_pos=True, show_eta=True,
                                         item_show_func=self._describe)
            self.bar.__enter__()
        self.bar.update(1)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
