"""The job requests the page's forms send (``catalogue``), checked, and a result's settings back as a request.

``job_arguments()`` turns a request from the page into the arguments of a
``Job``: only known fields of known types, images only by upload id, no
option that is a file path (those are the server's to fix, ``stylize serve
--set``), and the server's limits on size, length and iterations.
Everything else is checked by ``Settings.validate`` and ``Job`` exactly as
for the command line.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stylize.core import plugins
from stylize.core.errors import StylizeError, UsageError, one_line
from stylize.core.request.fields import described, parse_text
from stylize.core.request.initial import NAMED as NAMED_INITS
from stylize.core.contracts.options import LOSS_OPTIONS, check, declared
from stylize.core.request.presets import PRESETS
from stylize.core.request.settings import Settings, settings_from

from .catalogue import FIELDS, GROUPS, SERVER_FIELDS, plain
from .config import ServeConfig
from .work import UPLOAD_ID, Refused, WorkFolder


# -- requests from the page -----------------------------------------------------------

def _bad(message: str) -> Refused:
    return Refused(400, message)


def _check_type(name: str, value: Any, types: tuple[type, ...]) -> None:
    if isinstance(value, bool) and bool not in types:
        raise _bad(f"{name}: expected {_describe(types)}, got {value!r}")
    if not isinstance(value, types):
        raise _bad(f"{name}: expected {_describe(types)}, got {_short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"{name}: expected a finite number")


def _describe(types: tuple[type, ...]) -> str:
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text", list: "a list",
             type(None): "nothing (null)", dict: "an object"}
    return " or ".join(dict.fromkeys(words[t] for t in types))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _upload(work: WorkFolder, value: Any, what: str) -> Path:
    try:
        return work.upload(value)
    except Refused as e:
        raise Refused(e.status, f"{what}: {e.message}") from None


def job_arguments(request: Any, work: WorkFolder, config: ServeConfig) -> dict[str, Any]:
    """The keyword arguments of ``Job`` (without ``output``) for a job request from the page.

    The request::

        {"content": UPLOAD_ID, "styles": [{"upload": UPLOAD_ID, "weight": 1.0}, ...],
         "content_mask": UPLOAD_ID | null, "style_masks": [UPLOAD_ID, ...] | null,
         "preset": "photo" | null,
         "settings": {"length": 256, "iterations": 100, "losses": ["gram", "tv"], ...,
                      "options": {"tv": {"weight": 1e5}, ...}}}

    Raises Refused (400, or 404 for an upload that is gone) with a message for the page.
    """
    if not isinstance(request, dict):
        raise _bad("a job request is a JSON object with content, styles and settings")
    unknown = sorted(set(request) - {"content", "styles", "content_mask", "style_masks", "preset", "settings"})
    if unknown:
        raise _bad(f"unknown field(s) in the job request: {', '.join(map(str, unknown))}")
    content = _upload(work, request.get("content"), "content image")
    styles = request.get("styles")
    if not isinstance(styles, list) or not styles:
        raise _bad("give at least one style image")
    if len(styles) > config.max_styles:
        raise _bad(f"{len(styles)} style images; this server takes at most {config.max_styles}")
    style_paths, weights = [], []
    for i, style in enumerate(styles, 1):
        if not isinstance(style, dict) or set(style) - {"upload", "weight"}:
            raise _bad(f"style image {i}: expected {{\"upload\": id, \"weight\": number}}")
        style_paths.append(_upload(work, style.get("upload"), f"style image {i}"))
        weight = style.get("weight", 1.0)
        _check_type(f"style image {i} weight", weight, (int, float))
        weights.append(float(weight))
    masks = {}
    if request.get("content_mask") is not None or request.get("style_masks") is not None:
        style_masks = request.get("style_masks")
        if (not isinstance(style_masks, list) or len(style_masks) != len(style_paths) or None in style_masks
                or request.get("content_mask") is None):
            raise _bad("semantic masks need a content mask and one style mask per style image")
        masks["content_mask"] = _upload(work, request.get("content_mask"), "content mask")
        masks["style_masks"] = [_upload(work, m, f"style mask {i}") for i, m in enumerate(style_masks, 1)]
    preset = request.get("preset")
    if preset is not None and preset not in PRESETS:
        raise _bad(f"unknown preset {_short(preset)}; presets: {', '.join(sorted(PRESETS))}")
    fields = _settings_fields(request.get("settings", {}), work, config)
    fields["style_weights"] = None if all(w == 1.0 for w in weights) else weights
    try:
        settings = settings_from(None, preset, **fields)
        settings.options = _with_fixed(settings, config)
        settings.validate()
    except StylizeError as e:
        raise _bad(one_line(e)) from None
    except TypeError as e:  # a field of the wrong type that only the dataclass noticed
        raise _bad(one_line(e)) from None
    return {"content": content, "style": style_paths, "settings": settings, **masks}


def _settings_fields(given: Any, work: WorkFolder, config: ServeConfig) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise _bad("settings: expected an object of setting names and values")
    fields: dict[str, Any] = {}
    for name, value in given.items():
        if name == "options":
            continue
        if name not in FIELDS:
            raise _bad(f"settings: unknown or server-only setting {_short(name)} "
                       f"(a page may set {', '.join(sorted([*FIELDS, 'options']))})")
        _check_type(name, value, FIELDS[name])
        fields[name] = value
    if "losses" in fields:
        if not all(isinstance(n, str) for n in fields["losses"]) or len(fields["losses"]) > 16:
            raise _bad("losses: expected a list of loss names")
        fields["losses"] = list(dict.fromkeys(fields["losses"]))
    for name, most in (("length", config.max_length), ("iterations", config.max_iterations)):
        if name in fields and fields[name] > most:
            raise _bad(f"{name} {fields[name]}: this server takes at most {most} "
                       f"(stylize serve --max-{name} raises it)")
    init = fields.get("init")
    if init is not None and init not in NAMED_INITS:
        if not UPLOAD_ID.fullmatch(init):
            raise _bad(f"init {_short(init)}: choose {', '.join(NAMED_INITS)} or an uploaded image")
        fields["init"] = str(_upload(work, init, "init image"))
    about = described(Settings)
    for name, value in fields.items():
        if isinstance(value, str) and about[name][0].parse is not None and not about[name][0].multiple:
            fields[name] = parse_text(about[name][0], value)  # layers: comma-separated text
    fields["options"] = _plugin_options(given.get("options", {}), fields, config)
    for name in SERVER_FIELDS:  # the server's own (stylize serve --threads, --scheduler) win over the page
        if getattr(config, name, None) is not None:
            fields[name] = getattr(config, name)
    return fields


def _plugin_options(given: Any, fields: dict[str, Any], config: ServeConfig) -> dict[str, dict[str, Any]]:
    """Options from the page: declared, not file paths, scalar values (checked by type in ``validate``)."""
    if not isinstance(given, dict):
        raise _bad("options: expected {plugin: {option: value}}")
    options: dict[str, dict[str, Any]] = {}
    for name, values in given.items():
        if not isinstance(values, dict):
            raise _bad(f"options for {_short(name)}: expected {{option: value}}")
        if not values:
            continue
        group = _group_of(name, fields)
        if group is None:
            raise _bad(f"options given for {_short(name)}, which this run does not use")
        try:
            own = declared(plugins.load(group, name))
        except StylizeError as e:
            raise _bad(one_line(e)) from None
        known = {**({o.name: o for o in LOSS_OPTIONS} if group == "stylize.losses" else {}), **(own or {})}
        for key, value in values.items():
            where = f"{name}.{key}"
            if key not in known:
                hint = "" if own is not None else f" ({plugins.KIND[group]} {name!r} declares no options)"
                raise _bad(f"{where}: {plugins.KIND[group]} {name!r} has no option {_short(key)}{hint}; "
                           f"its options: {', '.join(sorted(known)) or 'none'}")
            if known[key].path:
                raise _bad(f"{where} is a file path on the server: set it when starting the server "
                           f"(stylize serve --set {where}=PATH), not from the page")
            _check_type(where, value, (int, float, str, bool))
        options[name] = dict(values)
    return options


def _group_of(name: str, fields: dict[str, Any]) -> str | None:
    defaults = Settings()
    if name == fields.get("backend", defaults.backend):
        return "stylize.backends"
    if name == fields.get("optimizer", defaults.optimizer):
        return "stylize.optimizers"
    if name == "content" or name in fields.get("losses", defaults.losses):
        return "stylize.losses"
    if name == fields.get("init", defaults.init):
        return "stylize.starts"
    return None


def _with_fixed(settings: Settings, config: ServeConfig) -> dict[str, dict[str, Any]]:
    """The run's plugin options with the server's fixed ones on top, for the plugins this run uses."""
    used = {settings.backend, settings.optimizer, "content", *settings.losses}
    options = {name: dict(values) for name, values in settings.options.items()}
    for name, values in config.fixed_options.items():
        if name in used:
            options[name] = {**options.get(name, {}), **values}
    return options


# -- settings read back from a result (their JSON form) -------------------------------

def form_of(fields: dict[str, Any]) -> dict[str, Any]:
    """Settings fields (a result's metadata, ``Settings.to_dict``'s form) as the ``settings`` of a job request.

    File-path options and settings the page does not set are left out; list
    values become what the page sends (layers comma-separated).
    """
    form: dict[str, Any] = {}
    for name in FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if FIELDS[name][0] is str and isinstance(value, (list, tuple)):  # a list the page sends as text
            value = ",".join(map(str, value))
        elif FIELDS[name][0] is list:
            value = list(value)
        elif name == "init" and value not in NAMED_INITS:
            continue  # an init image: not something the page can name by path
        form[name] = plain(value)
    options = {}
    for plugin, values in (fields.get("options") or {}).items():
        if not isinstance(values, dict):
            continue
        kept = {key: plain(value) for key, value in values.items()
                if not _is_path_option(plugin, key, fields) and isinstance(value, (int, float, str, bool))}
        if kept:
            options[plugin] = kept
    form["options"] = options
    return form


def _is_path_option(plugin: str, key: str, fields: dict[str, Any]) -> bool:
    group = _group_of(plugin, fields)
    if group is None:
        return True  # not used by this run as read: leave it out
    try:
        own = declared(plugins.load(group, plugin)) or {}
    except StylizeError:
        return True
    return key in own and own[key].path


def check_fixed(fixed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The server's own plugin options (``stylize serve --set``), checked and converted like ``--set``'s."""
    checked = {}
    for name, values in fixed.items():
        found = [group for group in GROUPS.values() if name in plugins.names(group)]
        if not found:
            known = sorted({n for group in GROUPS.values() for n in plugins.names(group)})
            raise UsageError(f"--set {name}.*: no installed plugin is called {name!r} (installed: {', '.join(known)})")
        group = found[0]
        extra = LOSS_OPTIONS if group == "stylize.losses" else ()
        checked[name] = check(plugins.KIND[group], name, plugins.load(group, name), values, extra)
    return checked
