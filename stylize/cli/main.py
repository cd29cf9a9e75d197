"""The ``stylize`` command: the only place that talks to a terminal.

Every user-facing failure is a ``StylizeError``; it is shown as one line on
stderr with the error's own exit code (``--debug`` shows the traceback).
Plugin names are validated when used, not by scanning entry points at import
time, so ``--help`` stays fast.
"""
from __future__ import annotations

import sys

import click

from stylize.core.errors import StylizeError


class StylizeGroup(click.Group):
    """Turns StylizeError into a one-line message and a distinct exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StylizeError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"stylize: error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("stylize: interrupted; no output written", err=True)
            sys.exit(130)


@click.group(cls=StylizeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="stylize")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Neural style transfer (Gatys et al.) with Caffe, built from plugins.

    Start with `stylize models fetch vgg19`, then `stylize run -c photo.jpg
    -s painting.jpg -o out.png`.
    """
    ctx.obj = {"debug": debug}


# Subcommands live in their own modules; they register here, after ``cli`` exists.
from .models import models  # noqa: E402
from .plugins import plugins_command  # noqa: E402
from .run import run  # noqa: E402

cli.add_command(run)
cli.add_command(models)
cli.add_command(plugins_command)
