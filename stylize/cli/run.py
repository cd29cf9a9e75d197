"""``stylize run``: one style transfer from the command line, with a progress bar."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from stylize.core.errors import NumericalError, UsageError

from .progress import Progress
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
              help="Style-to-content weight ratio; larger means more style. Means what the "
                   "reference's -r meant at 512x512, at every --length (content weight scales "
                   "with 512^2/area).")
@click.option("-n", "--iterations", type=int, default=DEFAULTS.iterations, show_default=True,
              help="Optimizer iterations.")
@click.option("-l", "--length", type=int, default=DEFAULTS.length, show_default=True,
              help="Long side of the output in pixels (aspect kept); the style image is "
                   "scaled to the same long side.")
@click.option("-i", "--init", default=DEFAULTS.init, show_default=True,
              help="Starting image: content, style, noise (pink noise, see --seed) or an image path.")
@click.option("--seed", type=int, default=None, help="Random seed for --init noise (same seed, same output).")
@click.option("--scales", type=int, default=None,
              help="Coarse-to-fine levels, each twice the size of the last; 1 turns it off. "
                   "Default: halve while the smallest stays >= 128 px (512 -> 128, 256, 512).")
@click.option("--content-layers", default=None, metavar="L1,L2",
              help="Layers for content terms (default: the backend's, conv4_2 for VGG).")
@click.option("--style-layers", default=None, metavar="L1,L2",
              help="Layers for style terms (default: the backend's, conv1_1..conv5_1 for VGG).")
@click.option("--prototxt", type=click.Path(), default=None,
              help="Your own Caffe network definition (deploy prototxt) for the backend; "
                   "with --backend caffe any model works, layers from --content/--style-layers.")
@click.option("--weights", type=click.Path(), default=None,
              help="Your own .caffemodel for the backend, e.g. the full-precision "
                   "VGG_ILSVRC_19_layers.caffemodel with --backend caffe-vgg19.")
@click.option("--model-dir", type=click.Path(), default=None,
              help="A folder with one deploy prototxt and one .caffemodel (instead of the two above).")
@click.option("--pooling", type=click.Choice(["avg", "max"]), default="avg", show_default=True,
              help="Pooling in VGG backends: average (Gatys' choice, smoother) or max.")
@click.option("--set", "settings_", multiple=True, metavar="PLUGIN.KEY=VALUE",
              help="Option for a plugin, repeatable: e.g. --set adam.lr=2, --set tv.weight=1e5 "
                   "(every loss takes weight= and layers=). Values are numbers, true/false or text.")
@click.option("-g", "--gpu", type=int, default=DEFAULTS.gpu, show_default=True,
              help="GPU id, -1 for CPU. This pycaffe is a CPU-only build.")
@click.option("--save-every", type=click.IntRange(min=1), default=None, metavar="N",
              help="Also write the image every N iterations, numbered next to the output "
                   "(out-0050.png, ...), to watch the run or stop it early.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="BLAS threads (default: OpenBLAS's own choice, all cores unless "
                   "OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(content, style, output, backend, losses, optimizer, ratio, iterations, length, init, seed,
        scales, content_layers, style_layers, prototxt, weights, model_dir, pooling, settings_, gpu,
        save_every, threads, quiet):
    """Stylize CONTENT with STYLE and write OUTPUT.

    Ctrl-C stops the run and writes the image reached so far to OUTPUT.
    """
    from stylize.core.images import check_output_path, save_image
    from stylize.core.pipeline import load_inputs, transfer

    options = parse_plugin_options(settings_)
    backend_options = options.setdefault(backend, {})
    backend_options.setdefault("pooling", pooling)
    for key, value in (("prototxt", prototxt), ("weights", weights), ("model_dir", model_dir)):
        if value is not None:
            backend_options[key] = value
    settings = Settings(backend=backend, losses=losses, optimizer=optimizer, ratio=ratio,
                        iterations=iterations, length=length, scales=scales, init=init, seed=seed,
                        gpu=gpu, threads=threads, content_layers=_layers(content_layers),
                        style_layers=_layers(style_layers), options=options)
    settings.validate()  # ranges and plugin names, before any image is read
    check_output_path(output)
    content_image, style_image = load_inputs(content, style, length)
    metadata = _metadata(settings, content, style)
    started = time.monotonic()
    latest = None

    def snapshot(result) -> None:
        nonlocal latest
        latest = result
        if save_every and result.step % save_every == 0:
            numbered = Path(output).with_name(f"{Path(output).stem}-{result.step:04d}{Path(output).suffix}")
            save_image(result.image, numbered, metadata={**metadata, "stylize:step": str(result.step)})

    try:
        with Progress(iterations, quiet) as report:
            image = transfer(content_image, style_image, settings,
                             callback=lambda result: (snapshot(result), report(result)))
    except NumericalError as e:
        if e.image is None:
            raise
        save_image(e.image, output, metadata=metadata)
        raise NumericalError(f"{e}; kept the last good image in {output}") from None
    except KeyboardInterrupt:
        if latest is None:
            raise
        save_image(latest.image, output, metadata={**metadata, "stylize:step": str(latest.step)})
        click.echo(f"stylize: interrupted at iteration {latest.step}/{iterations}; wrote {output}",
                   err=True)
        sys.exit(130)
    path = save_image(image, output, metadata=metadata)
    if not quiet:
        click.echo(f"wrote {path} ({image.shape[1]}x{image.shape[0]}, "
                   f"{time.monotonic() - started:.0f} s)", err=True)


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
        options.setdefault(name, {})[key.replace("-", "_")] = _value(value)
    return options


def _value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _metadata(settings: Settings, content: str, style: str) -> dict[str, str]:
    return {"Software": "stylize", "stylize:content": content, "stylize:style": style,
            "stylize:settings": repr(settings)}
