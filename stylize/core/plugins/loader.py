"""Loading one plugin by name: the only module that imports stevedore, and where a bad plugin becomes one line.

A driver is loaded with ``DriverManager``, which fails loudly: an unknown
name, a name registered twice or a plugin that fails to import each become a
one-line ``PluginError`` naming the plugin and, where possible, its
distribution and the closest known name.
"""
from __future__ import annotations

import difflib

from stevedore import driver, exception

from ..errors import PluginError
from .groups import GROUPS, KIND
from .misregistered import misregistrations
from .registry import names, registrants


def _unknown(group: str, name: str) -> PluginError:
    known = names(group)
    installed = f"installed: {', '.join(known) or 'none'}"
    astray = [reg for reg, meant in misregistrations() if meant == group and reg.name == name]
    if astray:
        return PluginError(f"unknown {KIND[group]} {name!r} ({installed}); {astray[0].hint()}")
    close = difflib.get_close_matches(name, known, n=1) or \
        [k for k in known if name and name.lower() in k.lower()][:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return PluginError(f"unknown {KIND[group]} {name!r}{hint} ({installed})")


def load(group: str, name: str) -> type:
    """The plugin class registered as ``name`` in ``group``, checked against its contract."""
    if name not in names(group):
        raise _unknown(group, name)
    try:
        mgr = driver.DriverManager(group, name, invoke_on_load=False,
                                   on_load_failure_callback=_reraise)
    except exception.MultipleMatches:
        dists = ", ".join(registrants(group, name)) or "unknown distributions"
        raise PluginError(f"{KIND[group]} {name!r} is registered by more than one package "
                          f"({dists}); uninstall one of them") from None
    except exception.NoMatches:
        raise _unknown(group, name) from None
    plugin = mgr.driver
    contract = GROUPS[group]
    if not (isinstance(plugin, type) and issubclass(plugin, contract)):
        raise PluginError(f"{KIND[group]} {name!r} ({_dist(mgr)}) does not implement "
                          f"stylize.core.{contract.__name__}")
    return plugin


def _reraise(manager, entrypoint, exc):
    dist = _dist_name(entrypoint)
    raise PluginError(f"plugin {entrypoint.name!r} from {dist} failed to load: "
                      f"{type(exc).__name__}: {exc}") from exc


def _dist(mgr) -> str:
    return _dist_name(mgr.extensions[0].entry_point)


def _dist_name(ep) -> str:
    """The distribution that registered ``ep``.

    stevedore's entry-point cache drops ``ep.dist``, so it is looked up again
    (only on error paths, where the cost of a scan does not matter).
    """
    dist = getattr(ep, "dist", None)
    if dist is not None and getattr(dist, "name", None):
        return dist.name
    found = registrants(ep.group, ep.name, ep.value)
    return found[0] if found else "unknown distribution"
