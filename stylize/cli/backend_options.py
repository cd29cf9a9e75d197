"""The backends' own options as flags of ``stylize run``, generated from what installed backends declare.

The generic command line names no backend's option: ``--pooling`` exists
because the VGG backends declare it, ``--prototxt`` because the Caffe ones
do, and a third-party backend's options appear the same way. A flag goes
to the chosen backend; a backend that does not declare it refuses it (with
the options it has), like any unknown ``--set`` key. The same options stay
reachable as ``--set BACKEND.KEY=VALUE``.
"""
from __future__ import annotations

import click

from stylize.core import plugins
from stylize.core.errors import StylizeError
from stylize.core.options import Option

_TYPES = {float: click.FLOAT, int: click.INT, bool: click.BOOL}


def declared_backend_options() -> dict[str, tuple[Option, list[str]]]:
    """``{option name: (its first declaration, the backends declaring it)}`` over installed backends."""
    found: dict[str, tuple[Option, list[str]]] = {}
    for name in plugins.names("stylize.backends"):
        try:
            cls = plugins.load("stylize.backends", name)
        except StylizeError:
            continue  # a broken plugin: `stylize plugins --check` names it, `--backend` explains it
        for option in cls.options or ():
            found.setdefault(option.name, (option, []))[1].append(name)
    return found


def flag(option: Option, backends: list[str]) -> click.Option:
    """The click option for ``option``, showing the backend's default (only values the user gives are passed)."""
    if option.choices is not None:
        kind = click.Choice(list(option.choices))
    elif option.path:
        kind = click.Path()
    else:
        kind = _TYPES.get(option.type, click.STRING)
    return click.Option([f"--{option.name.replace('_', '-')}", option.name], type=kind, default=option.default,
                        show_default=option.default is not None,
                        help=f"{option.help} (Backends: {', '.join(backends)}.)")


#: Names of the flags added to ``stylize run`` (filled in by ``backend_options``).
BACKEND_OPTIONS: set[str] = set()


def backend_options(command: click.Command) -> click.Command:
    """Add a flag for every declared backend option whose name the command does not use (decorator)."""
    taken = {param.name for param in command.params}
    for name, (option, backends) in sorted(declared_backend_options().items()):
        if name in taken:
            continue  # would shadow a run option: reachable as --set BACKEND.NAME=VALUE
        command.params.append(flag(option, backends))
        BACKEND_OPTIONS.add(name)
    return command
