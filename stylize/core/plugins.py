"""Finding and loading plugins: the only module that imports stevedore.

Built-in backends, losses and optimizers register in stylize's own setup.cfg
exactly as a third-party package would, so everything goes through here.
A driver is loaded with ``DriverManager``, which fails loudly: an unknown
name, a name registered twice or a plugin that fails to import each become a
one-line ``PluginError`` naming the plugin and, where possible, its
distribution and the closest known name.
"""
from __future__ import annotations

import difflib
import importlib.metadata

from stevedore import driver, exception, extension

from .contracts import Backend, Loss, Optimizer
from .errors import PluginError

#: Entry-point group -> the contract its plugins implement.
GROUPS = {
    "stylize.backends": Backend,
    "stylize.losses": Loss,
    "stylize.optimizers": Optimizer,
}
KIND = {"stylize.backends": "backend", "stylize.losses": "loss", "stylize.optimizers": "optimizer"}


def entry_points(group: str) -> list:
    """Entry points registered in ``group``, read without importing any plugin."""
    return extension.ExtensionManager.make_test_instance([], namespace=group).list_entry_points()


def names(group: str) -> list[str]:
    return sorted({ep.name for ep in entry_points(group)})


def _unknown(group: str, name: str) -> PluginError:
    known = names(group)
    close = difflib.get_close_matches(name, known, n=1) or \
        [k for k in known if name and name.lower() in k.lower()][:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return PluginError(f"unknown {KIND[group]} {name!r}{hint} (installed: {', '.join(known) or 'none'})")


def load(group: str, name: str) -> type:
    """The plugin class registered as ``name`` in ``group``, checked against its contract."""
    if name not in names(group):
        raise _unknown(group, name)
    try:
        mgr = driver.DriverManager(group, name, invoke_on_load=False,
                                   on_load_failure_callback=_reraise)
    except exception.MultipleMatches:
        dists = ", ".join(_registrants(group, name)) or "unknown distributions"
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
    names = _registrants(ep.group, ep.name, ep.value)
    return names[0] if names else "unknown distribution"


def _registrants(group: str, name: str, value: str | None = None) -> list[str]:
    """Names of the installed distributions registering ``name`` in ``group``."""
    found = []
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == group and ep.name == name and value in (None, ep.value):
                dist_name = dist.metadata["Name"] or "unknown distribution"
                if dist_name not in found:
                    found.append(dist_name)
    return sorted(found)
