"""Plugin options: declared once by the plugin, checked and converted before a run starts.

A plugin lists what it takes as ``options = (Option("lr", float, 10.0,
"step size"), ...)``. The one declaration serves every place an option is
named: ``--set adam.lr=2`` and config files (checked here, so a typo such as
``--set adam.rl=2`` is an error that suggests ``lr`` instead of being
ignored), a backend's own command-line flags (``--pooling``), the web app's
forms and ``stylize plugins``. A plugin that declares nothing (``options =
None``, the contracts' default, for plugins written before declarations)
receives its options unchecked.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..errors import UsageError


@dataclass(frozen=True)
class Option:
    """One option a plugin takes: its name (a keyword of the constructor), type, default and help."""

    name: str
    #: ``float``, ``int``, ``bool`` or ``str``; values given as text are converted to it.
    type: Callable[[Any], Any] = str
    default: Any = None
    help: str = ""
    #: The values allowed, if only a few are.
    choices: Sequence[str] | None = None
    #: A file or folder path (a ``str``): drivers may offer a file picker or check it exists.
    path: bool = False

    def convert(self, value: Any, where: str) -> Any:
        """``value`` as this option's type, or a one-line UsageError naming ``where`` (``adam.lr``)."""
        if value is None:
            return None
        if isinstance(value, bool) and self.type is not bool:
            converted = _INVALID  # True is an int to Python, not a number to a user
        else:
            converted = _CONVERT.get(self.type, self.type)(value)
        if converted is _INVALID or (isinstance(converted, float) and not math.isfinite(converted)):
            raise UsageError(f"{where}={value!r}: expected {_TYPE_NAMES.get(self.type, 'a value')}")
        if self.choices is not None and converted not in self.choices:
            raise UsageError(f"{where}={value!r}: choose one of {', '.join(map(str, self.choices))}")
        return converted


_INVALID = object()


def _to_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return _INVALID


def _to_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return _INVALID


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}.get(
            value.strip().lower(), _INVALID)
    return _INVALID


def _to_str(value: Any) -> Any:
    return str(value) if isinstance(value, (str, int, float)) or hasattr(value, "__fspath__") else _INVALID


_CONVERT = {float: _to_float, int: _to_int, bool: _to_bool, str: _to_str}
_TYPE_NAMES = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}

#: What every loss takes besides its own options; the pipeline consumes them.
LOSS_OPTIONS = (
    Option("weight", float, None, "The term's weight (content 1, style --ratio, image terms their own)."),
    Option("layers", str, None, "Layers the term reads, comma-separated (default: the backend's)."),
)


def declared(plugin: type) -> dict[str, Option] | None:
    """``{name: Option}`` a plugin class declares, or None if it declares nothing."""
    options = getattr(plugin, "options", None)
    if options is None:
        return None
    return {option.name: option for option in options}


def check(kind: str, name: str, plugin: type, given: Mapping[str, Any],
          extra: Sequence[Option] = ()) -> dict[str, Any]:
    """``given`` checked against what ``plugin`` declares (plus ``extra``), values converted.

    An unknown key is a UsageError that suggests the closest declared name;
    an undeclaring plugin gets ``given`` unchanged.
    """
    options = declared(plugin)
    if options is None:
        return dict(given)
    options = {**{option.name: option for option in extra}, **options}
    checked = {}
    for key, value in given.items():
        if key not in options:
            raise UsageError(unknown_key(kind, name, key, options))
        if key == "layers" and not isinstance(value, str):  # a list or {layer: weight} from Python
            checked[key] = value
            continue
        checked[key] = options[key].convert(value, f"{name}.{key}")
    return checked


def unknown_key(kind: str, name: str, key: str, options: Mapping[str, Option]) -> str:
    # Same letters in another order (``rl`` for ``lr``) first: difflib scores short swaps too low.
    close = [option for option in options if sorted(option) == sorted(key)][:1] or \
        difflib.get_close_matches(key, list(options), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(sorted(options)) or "none"
    return f"{kind} {name!r} has no option {key!r}; {hint}its options: {known}"
