"""Options of ``stylize run`` from a TOML file and from ``STYLIZE_*`` environment variables.

Precedence: command line > environment > config file > preset > default.
click already ranks the first three (command line, ``envvar``, its
``default_map``) and records where each value came from, so the config file
becomes the context's ``default_map`` and each option gets its ``envvar``;
``--preset`` then fills in only values whose source is still DEFAULT.

Both sources are checked up front, when ``--config`` is processed (it is
eager, so before any other option): an unknown key, a wrong type or an
invalid value is one line naming the key or the variable, rather than a
click message about an option the user never typed.
"""
from __future__ import annotations

import os
import tomllib
from typing import Any, Sequence

import click

from stylize.core.errors import UsageError

ENV_PREFIX = "STYLIZE_"
#: ``STYLIZE_`` variables that mean something else (``STYLIZE_HOME`` is the cache folder).
RESERVED = frozenset({"STYLIZE_HOME"})


def option_name(param: click.Option) -> str:
    """The long option without dashes, ``save-every``: the config key (``save_every`` also works)."""
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return (longs[0] if longs else param.opts[0]).lstrip("-")


def env_name(param: click.Option) -> str:
    """``--save-every`` -> ``STYLIZE_SAVE_EVERY``."""
    return ENV_PREFIX + option_name(param).upper().replace("-", "_")


def configurable(command: click.Command) -> click.Command:
    """Give each option of ``command`` its ``STYLIZE_*`` variable (decorator, outermost)."""
    for param in _options(command):
        name = env_name(param)
        if name in RESERVED:
            raise AssertionError(f"option {param.opts} would read {name}, which means something else")
        param.envvar = name
    return command


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.expose_value]


def load_config(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
    """Callback of the eager ``--config`` option: check the environment, read the file into default_map."""
    options = [p for p in _options(ctx.command) if p is not param]
    for option in options:
        _check_env(ctx, option)
    if path is None:
        return None
    table = _read(path)
    by_key = {}
    for option in options:
        key = option_name(option)
        by_key[key] = by_key[key.replace("-", "_")] = option
    defaults = {}
    for key, value in table.items():
        option = by_key.get(key)
        if option is None:
            raise UsageError(f"{path}: unknown key {key!r}; keys are the long options of `stylize run` "
                             f"({', '.join(sorted(option_name(o) for o in options))})")
        checked = checked_value(ctx, option, key, value, path)
        if option.name == PLUGIN_OPTIONS:
            ctx.meta[PLUGIN_OPTIONS] = checked  # merged key by key, see plugin_items
        else:
            defaults[option.name] = checked
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


#: The repeatable ``--set PLUGIN.KEY=VALUE`` option: its sources combine per key instead of replacing.
PLUGIN_OPTIONS = "settings_"


def plugin_items(ctx: click.Context, given: Sequence[str]) -> list[str]:
    """``--set`` items of the config file, the environment and the command line, in that order.

    Later items win key by key (``parse_plugin_options``), so a command-line
    ``--set adam.lr=2`` overrides only ``adam.lr`` and keeps the file's
    ``[set.tv] weight``. Click alone would take the whole list from one source.
    """
    option = next(p for p in ctx.command.params if p.name == PLUGIN_OPTIONS)
    env_skipped = ctx.get_parameter_source(PLUGIN_OPTIONS) is click.core.ParameterSource.COMMANDLINE
    env_items = list(option.value_from_envvar(ctx) or ()) if env_skipped else []
    return [*ctx.meta.get(PLUGIN_OPTIONS, ()), *env_items, *given]


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--config {path}: is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config {path}: not valid TOML ({e})") from None
    except OSError as e:
        raise UsageError(f"--config {path}: cannot read ({e.strerror or e})") from None


def _check_env(ctx: click.Context, option: click.Option) -> None:
    raw = os.environ.get(option.envvar) if isinstance(option.envvar, str) else None
    if not raw:
        return
    try:
        option.type_cast_value(ctx, option.value_from_envvar(ctx))
    except click.BadParameter as e:
        raise UsageError(f"{option.envvar}={raw!r}: {e.message}") from None


def _expected(option: click.Option) -> tuple[tuple[type, ...], str]:
    """The TOML types a value of ``option`` may have, and how to say so."""
    if option.is_flag:
        return (bool,), "true or false"
    kind = option.type
    if isinstance(kind, click.types.IntParamType):
        return (int,), "an integer"
    if isinstance(kind, click.types.FloatParamType):
        return (int, float), "a number"
    if isinstance(kind, click.Choice) and all(isinstance(c, int) for c in kind.choices):  # --bit-depth 8|16
        return (int,), f"one of {', '.join(map(str, kind.choices))}"
    return (str,), "a string"


def checked_value(ctx: click.Context, option: click.Option, key: str, value: Any, path: str) -> Any:
    """``value`` from the file if it has the option's type (a list for repeatable options)."""
    if option.name == "settings_" and isinstance(value, dict):
        value = _plugin_table(value, key, path)
    types, wanted = _expected(option)
    items = value if option.multiple and isinstance(value, list) else [value]
    for item in items:
        if (isinstance(item, bool) and bool not in types) or not isinstance(item, types):
            what = f"{wanted} or a list of them" if option.multiple else wanted
            raise UsageError(f"{path}: {key} = {value!r}: expected {what}")
    value = items if option.multiple else value
    try:
        option.type_cast_value(ctx, value)
    except click.BadParameter as e:
        raise UsageError(f"{path}: {key} = {value!r}: {e.message}") from None
    return value


def _plugin_table(table: dict, key: str, path: str) -> list[str]:
    """``[set.tv] weight = 1e5`` -> ``["tv.weight=100000.0"]``, as ``--set`` takes them."""
    items = []
    for plugin, options in table.items():
        if not isinstance(options, dict):
            raise UsageError(f"{path}: {key}.{plugin} = {options!r}: expected a table such as "
                             f"[{key}.{plugin}] weight = 1e5")
        for name, value in options.items():
            if isinstance(value, list):
                value = ",".join(map(str, value))
            elif isinstance(value, bool):
                value = str(value).lower()
            items.append(f"{plugin}.{name}={value}")
    return items
