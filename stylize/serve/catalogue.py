"""What the page builds its forms from: the installed plugins with their options, and the settings it may set.

``catalogue()`` lists every backend, loss, optimizer and start installed,
each with the options it declares (``stylize.core.contracts.options``) and a loss's
generic ``weight`` and ``layers``: a third-party plugin appears on the page
with its options and their defaults without any change here. The settings
the page may set, their JSON types, defaults and help come from each
``Settings`` field's declaration (``stylize.core.request.fields``), so a new field
is offered by the page (under "More settings") without a change here either.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stylize.core import plugins
from stylize.core.errors import StylizeError, one_line
from stylize.core.request.fields import FORM, SERVER, Setting, described, offered_by
from stylize.core.request.initial import NAMED as NAMED_INITS
from stylize.core.contracts.options import LOSS_OPTIONS, Option, declared
from stylize.core.request.presets import PRESETS, QUALITIES
from stylize.core.request.settings import Settings

from .config import ServeConfig

GROUPS = {"backends": "stylize.backends", "losses": "stylize.losses", "optimizers": "stylize.optimizers",
          "starts": "stylize.starts"}
_TYPE_NAMES = {float: "float", int: "int", bool: "bool", str: "str"}


def json_types(about: Setting, default: Any) -> tuple[type, ...]:
    """The JSON types a page may send for a field: a list for a repeated one, text for one read from text
    (layers, comma-separated), else its type (a whole number for a number too); null where the default is."""
    if about.multiple:
        types: tuple[type, ...] = (list,)
    elif about.parse is not None:
        types = (str,)
    else:
        types = {float: (int, float), int: (int,), bool: (bool,)}.get(about.type, (str,))
    return types + ((type(None),) if default is None else ())


#: Settings a page may set (their declarations offer them to the form), with the JSON types each takes.
FIELDS: dict[str, tuple[type, ...]] = {
    name: json_types(about, default) for name, (about, default) in described(Settings).items()
    if FORM in about.drivers}
#: Settings the server sets for every job (``ServeConfig``'s attribute of the same name, when not None).
SERVER_FIELDS = offered_by(Settings, SERVER)


def option_json(option: Option, fixed: dict[str, Any], generic: bool = False) -> dict[str, Any]:
    """One option as the page builds its input from it."""
    found = {"name": option.name, "type": _TYPE_NAMES.get(option.type, "str"), "default": plain(option.default),
             "help": option.help, "choices": None if option.choices is None else list(option.choices),
             "path": option.path, "generic": generic}
    if option.name in fixed:  # a file the server fixed is shown by its name, not its path on the server
        found["fixed"] = Path(str(fixed[option.name])).name if option.path else plain(fixed[option.name])
    return found


def plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def catalogue(config: ServeConfig) -> dict[str, Any]:
    """Everything the page needs to build its forms: plugins and their options, presets, defaults, limits."""
    found: dict[str, Any] = {kind: [] for kind in GROUPS}
    broken = []
    for kind, group in GROUPS.items():
        for name in plugins.names(group):
            try:
                cls = plugins.load(group, name)
            except StylizeError as e:  # a broken plugin: listed apart with its error, not fatal to the page
                broken.append({"kind": plugins.KIND[group], "name": name, "message": one_line(e)})
                continue
            fixed = config.fixed_options.get(name, {})
            own = declared(cls)
            generic = LOSS_OPTIONS if kind == "losses" else ()
            options = [option_json(o, fixed, generic=True) for o in generic]
            options += [option_json(o, fixed) for o in (own or {}).values() if o.name not in {g.name for g in generic}]
            found[kind].append({"name": name, "doc": plugins.first_line(cls.__doc__) or "",
                                "declared": own is not None, "options": options})
    defaults = Settings()
    return {**found, "broken": broken,
            "presets": {name: {key: plain(value) for key, value in values.items()}
                        for name, values in PRESETS.items()},
            "qualities": qualities(defaults),
            "defaults": {name: plain(getattr(defaults, name)) for name in FIELDS},
            "fields": fields_json(),
            "inits": list(NAMED_INITS),
            "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                       "max_length": config.max_length, "max_iterations": config.max_iterations,
                       "max_styles": config.max_styles}}


def fields_json() -> dict[str, dict[str, Any]]:
    """What the page needs to offer each setting it may set without a control of its own: from its declaration."""
    about = described(Settings)
    return {name: {"type": "list" if types[0] is list else _TYPE_NAMES.get(about[name][0].type, "str"),
                   "nullable": type(None) in types, "help": about[name][0].help,
                   "choices": None if about[name][0].choices is None else [plain(c) for c in about[name][0].choices]}
            for name, types in FIELDS.items()}


def qualities(defaults: Settings) -> dict[str, dict[str, Any]]:
    """``--quality``'s choices as the form values each sets: every one names all the fields any of
    them sets, so that choosing normal after draft puts the defaults back."""
    fields = {key for values in QUALITIES.values() for key in values}
    return {name: {key: plain(values.get(key, getattr(defaults, key))) for key in sorted(fields)}
            for name, values in QUALITIES.items()}
