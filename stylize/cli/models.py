"""``stylize models``: list and fetch network weights."""
from __future__ import annotations

import click


@click.group()
def models():
    """List and fetch network weights (stored in $STYLIZE_HOME, default ~/.cache/stylize)."""


@models.command("list")
def models_list():
    """Show the known models, whether installed, and where."""
    from stylize.backends import zoo
    for name, info in zoo.MODELS.items():
        path = zoo.weights_path(name)
        state = f"installed  {path}" if path.is_file() else "missing    (stylize models fetch " + name + ")"
        click.echo(f"{name:10} {state}\n{'':10} {info.description}; source: {info.source}")


@models.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True, help="Fetch again even if already installed.")
def models_fetch(name, force):
    """Download NAME's weights and install them as a Caffe model."""
    from stylize.backends import zoo
    info = zoo.model(name)
    path = zoo.weights_path(name)
    if path.is_file() and not force:
        click.echo(f"{name} already installed at {path}")
        return
    click.echo(f"fetching {name} from {info.source} ...", err=True)
    click.echo(f"installed {name} at {zoo.fetch(name)}")
