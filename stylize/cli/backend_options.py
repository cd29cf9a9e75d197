"""The backends' own options as flags of ``stylize run``, generated from what installed backends declare.

The generic command line names no backend's option: ``--pooling`` exists
because the VGG backends declare it, ``--prototxt`` because the Caffe ones
do, and a third-party backend's options appear the same way. A flag goes
to the chosen backend; a backend that does not declare it refuses it (with
the options it has), like any unknown ``--set`` key. The same options stay
reachable as ``--set BACKEND.KEY=VALUE``.

One flag is one declaration, and its help names the backends it belongs to:
backends share a flag only by sharing the declaration itself (the Caffe
backends' ``--weights``). Two backends declaring one name differently, or a
backend declaring a name of the command's own (``--threads``, which every
backend receives from the run), is a PluginError naming both: a flag whose
help described another plugin's option would mislead.
"""
from __future__ import annotations

from typing import Collection, Mapping

import click

from stylize.core import plugins
from stylize.core.errors import PluginError, StylizeError
from stylize.core.contracts.options import Option

_TYPES = {float: click.FLOAT, int: click.INT, bool: click.BOOL}


def installed_backends() -> dict[str, type]:
    """The installed backends' classes by name; a broken plugin is left out (`stylize plugins --check` names it)."""
    classes = {}
    for name in plugins.names("stylize.backends"):
        try:
            classes[name] = plugins.load("stylize.backends", name)
        except StylizeError:
            continue  # `--backend NAME` explains it
    return classes


def declared_backend_options(classes: Mapping[str, type] | None = None,
                             taken: Collection[str] = ()) -> dict[str, tuple[Option, list[str]]]:
    """``{option name: (its declaration, the backends declaring it)}`` over ``classes`` (None: the installed).

    Raises PluginError, naming both, when two backends declare one name differently or a backend
    declares one of ``taken`` (the command's own options).
    """
    found: dict[str, tuple[Option, list[str]]] = {}
    for name, cls in (installed_backends() if classes is None else classes).items():
        for option in cls.options or ():
            flag_text = f"--{option.name.replace('_', '-')}"
            if option.name in taken:
                raise PluginError(f"backend {name!r} declares an option {option.name!r}, but {flag_text} is "
                                  f"stylize's own, passed to every backend; rename the backend's option")
            if option.name in found and found[option.name][0] != option:
                other = found[option.name][1][0]
                raise PluginError(f"backends {other!r} and {name!r} both declare an option {option.name!r}, "
                                  f"differently: one {flag_text} cannot describe both; rename one of them")
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
                        help=f"{option.help} ({'Backend' if len(backends) == 1 else 'Backends'}: "
                             f"{', '.join(backends)}.)")


#: Names of the flags added to ``stylize run`` (filled in by ``backend_options``).
BACKEND_OPTIONS: set[str] = set()


def backend_options(command: click.Command) -> click.Command:
    """Add a flag for every declared backend option (decorator); a clash is a PluginError."""
    taken = {param.name for param in command.params} | {"gpu", "threads", "layers"}
    for name, (option, backends) in sorted(declared_backend_options(taken=taken).items()):
        command.params.append(flag(option, backends))
        BACKEND_OPTIONS.add(name)
    return command
