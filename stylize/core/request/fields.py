"""How a ``Settings`` field describes itself, once, so that every driver derives its options from it.

Each field of ``stylize.core.request.settings.Settings`` is declared with
``setting(default, help=..., ...)``: its help text, its type and how text
becomes a value (``parse``), its check, whether it changes the result (what
a checkpoint must match) and which drivers offer it. The command line's
options (``stylize run``, ``stylize video`` and ``stylize batch``'s), the web
form's fields and the checkpoint rules are read from these declarations, so
a new setting is one field plus the code that uses it. The declaration lives
in the field's own metadata (not a table beside the class) so that it cannot
drift from the field, and a subclass's new field carries its own.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import UsageError

#: The drivers a field may be offered by: ``stylize run``'s options, ``stylize video``'s, a batch's
#: command line and manifest keys, the web page's form, and the web server's own settings for every job.
RUN, VIDEO, BATCH, FORM, SERVER = "run", "video", "batch", "form", "server"
EVERY = frozenset({RUN, VIDEO, BATCH, FORM})
#: Where a field keeps its declaration in ``dataclasses.Field.metadata``.
KEY = "stylize"


@dataclass(frozen=True)
class Setting:
    """What a ``Settings`` field is, for the drivers: everything but its name and default."""

    help: str
    #: ``int``, ``float``, ``bool`` or ``str``: the type of one value (of each item when ``multiple``).
    type: Callable[[Any], Any] = str
    #: Text (a command-line value, a form's text box, a CSV cell) to the field's value; None: ``type``.
    parse: Callable[[str], Any] | None = None
    #: The value checked (and normalized) or a one-line UsageError; None: no check of its own.
    check: Callable[[Any], Any] | None = None
    #: It changes the picture made: a checkpoint made with another value is refused.
    result: bool = True
    #: It changes the network loaded or the optimizer built (batch shares one network's load otherwise).
    network: bool = False
    drivers: frozenset[str] = EVERY
    #: Command-line spellings; default ``--name-with-dashes``.
    flags: tuple[str, ...] = ()
    #: A list given by repeating the option (``--loss gram --loss tv``).
    multiple: bool = False
    #: The values allowed, if only a few are.
    choices: Sequence[Any] | None = None
    #: The smallest value allowed (whole numbers).
    minimum: int | None = None
    metavar: str | None = None


def setting(default: Any = None, *, factory: Callable[[], Any] | None = None, **about: Any) -> Any:
    """A ``Settings`` field with its declaration (``Setting``'s fields as keywords)."""
    metadata = {KEY: Setting(**about)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def described(cls: type) -> dict[str, tuple[Setting, Any]]:
    """``{field name: (its Setting, its default)}`` of a Settings class, in declaration order."""
    found = {}
    for f in dataclasses.fields(cls):
        if KEY in f.metadata:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            found[f.name] = (f.metadata[KEY], default)
    return found


def offered_by(cls: type, driver: str) -> list[str]:
    """The fields of ``cls`` that ``driver`` offers, in declaration order."""
    return [name for name, (about, _) in described(cls).items() if driver in about.drivers]


def long_flag(name: str, about: Setting) -> str:
    """How the command line spells a field: ``--loss`` for ``losses``, ``--style-scale`` for ``style_scale``."""
    return next((flag for flag in about.flags if flag.startswith("--")), "--" + name.replace("_", "-"))


def parse_text(about: Setting, text: str) -> Any:
    """A field's value from text, by its declaration."""
    return about.parse(text) if about.parse is not None else text


# -- parses and checks the declarations share ------------------------------------------------

def parse_layers(text: str | None) -> list[str] | None:
    """``"conv1_1, conv2_1"`` -> ``["conv1_1", "conv2_1"]`` (commas or spaces); None for no names.

    The one place a list of layer names is read from text: ``--style-layers``, the web form, a
    loss's ``layers=`` option."""
    return text.replace(",", " ").split() or None if text else None


def parse_weights(text: str) -> list[float]:
    """``"3,1"`` -> ``[3.0, 1.0]``: the blend weights of the style images."""
    try:
        return [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--style-weights {text!r}: expected numbers separated by commas, e.g. 3,1") from None


def at_least(name: str, least: int, optional: bool = False) -> Callable[[Any], Any]:
    """A check: a whole number of at least ``least`` (or None when ``optional``)."""
    def check(value: Any) -> Any:
        if not (optional and value is None) and value < least:
            raise UsageError(f"{name} must be at least {least}, got {value}")
        return value
    return check


def positive(name: str) -> Callable[[Any], Any]:
    """A check: a positive finite number."""
    def check(value: Any) -> Any:
        if not value > 0 or not math.isfinite(value):
            raise UsageError(f"{name} must be a positive number, got {value}")
        return value
    return check


def one_of(choices: Sequence[Any], message: Callable[[Any], str]) -> Callable[[Any], Any]:
    """A check: one of ``choices``; ``message(value)`` otherwise."""
    def check(value: Any) -> Any:
        if value not in choices:
            raise UsageError(message(value))
        return value
    return check
