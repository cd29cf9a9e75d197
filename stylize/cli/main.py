"""The ``stylize`` command: the only place that talks to a terminal.

Every user-facing failure is a ``StylizeError``; it is shown as one line on
stderr with the error's own exit code (``--debug`` shows the traceback).
Plugin names are validated when used, not by scanning entry points at import
time, so ``--help`` stays fast.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import click

from stylize.core.errors import INTERNAL_ERROR_EXIT, StylizeError


class StylizeGroup(click.Group):
    """Every failure as one ``stylize: error:`` line on stderr with a distinct exit code.

    StylizeError carries its own code; click's usage errors (an unknown
    option, a value that is not a number) exit 2 like stylize's UsageError;
    anything else is a bug, reported on one line with exit code 70. Python
    warnings (numpy overflow, Pillow) are hidden so stderr stays one line.
    ``--debug`` shows tracebacks and warnings instead.
    """

    #: Subcommands imported only when used: ``run`` builds its backend flags from the installed
    #: backends, which ``stylize plugins`` and ``--help`` must not import.
    lazy = {"run": "stylize.cli.run:run", "batch": "stylize.cli.batch:batch",
            "serve": "stylize.cli.serve:serve",
            "video": "stylize.cli.video:video"}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, _, attribute = self.lazy[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # plain `stylize`: click shows the help
        except click.ClickException as e:  # bad options before the command name
            _fail(_click_message(e), e.exit_code)

    def invoke(self, ctx: click.Context):
        debug = bool(ctx.params.get("debug"))
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
            try:
                return super().invoke(ctx)
            except StylizeError as e:
                if debug:
                    raise
                _fail(str(e), e.exit_code)
            except click.exceptions.NoArgsIsHelpError:
                raise
            except click.ClickException as e:
                _fail(_click_message(e), e.exit_code)
            except KeyboardInterrupt:
                click.echo("stylize: interrupted; no output written", err=True)
                sys.exit(130)
            except (click.exceptions.Exit, click.Abort, SystemExit):
                raise
            except Exception as e:
                if debug:
                    raise
                _fail(f"internal error, please report it: {type(e).__name__}: {e} "
                      f"(at {_where(e)}; --debug shows the traceback)", INTERNAL_ERROR_EXIT)


def _fail(message: str, exit_code: int):
    click.echo(f"stylize: error: {' '.join(message.split())}", err=True)
    sys.exit(exit_code)


def _click_message(e: click.ClickException) -> str:
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return e.format_message() + hint


def _where(e: BaseException) -> str:
    """File and line where ``e`` was raised, for a bug report without a traceback."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb is not None else "?"


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


# Subcommands live in their own modules; they register here, after ``cli`` exists (``run``: lazily, above).
from .models import models  # noqa: E402
from .plugins import plugins_command  # noqa: E402

cli.add_command(models)
cli.add_command(plugins_command)
