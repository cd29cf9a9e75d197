"""The command line's options for ``Settings`` fields, made from each field's declaration, and settings from them.

A field offered by a command (``stylize.core.request.fields``: ``RUN`` for ``stylize
run``, whose options ``stylize video`` and ``stylize batch`` copy) becomes a
click option with the field's flags, help, type and default; nothing here
names a field. Settings are then made by core's ``settings_from`` from what
the user gave (any source but the default), so a preset and a quality fill
in the rest exactly as for the Python API and the web page.
"""
from __future__ import annotations

import math

import click

from stylize.core.errors import UsageError
from stylize.core.request.fields import RUN, Setting, described, long_flag
from stylize.core.request.settings import Settings, settings_from

from .config import plugin_items

_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING}


def option_for(name: str, about: Setting, default) -> click.Option:
    """The click option of field ``name``."""
    decls = [*dict.fromkeys([*about.flags, long_flag(name, about)]), name]
    if about.type is bool:
        return click.Option(decls, is_flag=True, default=default, help=about.help)
    if about.choices is not None:
        kind = click.Choice(list(about.choices))
    elif about.minimum is not None:
        kind = click.IntRange(min=about.minimum)
    else:
        kind = _TYPES.get(about.type, click.STRING) if about.parse is None else click.STRING
    if about.parse is not None and not about.multiple and default is not None:
        default = str(default)  # given as text, parsed by the field's declaration
    return click.Option(decls, type=kind, default=default, multiple=about.multiple, metavar=about.metavar,
                        show_default=default is not None, help=about.help)


def setting_options(driver: str = RUN):
    """Decorator: append an option for every field ``driver`` offers, in the fields' order (one the command
    declares itself, such as ``stylize serve --threads`` with its own help, is left to it)."""
    def add(command: click.Command) -> click.Command:
        own = {param.name for param in command.params}
        for name, (about, default) in described(Settings).items():
            if driver in about.drivers and name not in own:
                command.params.append(option_for(name, about, default))
        return command
    return add


def settings_from_options(ctx: click.Context, given: dict, backend_given: dict) -> Settings:
    """Settings from the options: what the user gave (any source but the default) over the preset and quality.

    Backend flags join the ``--set`` options of the chosen backend; one the
    backend does not declare is refused by ``Settings.validate`` like any
    unknown plugin option.
    """
    preset, quality = given.pop("preset"), given.pop("quality", None)
    options = parse_plugin_options(plugin_items(ctx, given.pop("settings_")))
    chosen = {key: value for key, value in given.items() if _given(ctx, key)}
    flags = {key: value for key, value in backend_given.items() if _given(ctx, key)}
    if flags:
        backend = chosen.get("backend", Settings.backend)
        options[backend] = {**options.get(backend, {}), **flags}
    return settings_from(None, preset, quality, **chosen, options=options)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


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
