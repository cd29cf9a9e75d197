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
    close = difflib.get_close_matches(name, known, n=1)
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
        raise PluginError(f"{KIND[group]} {name!r} is registered by more than one package; "
                          "uninstall one of them") from None
    except exception.NoMatches:
        raise _unknown(group, name) from None
    plugin = mgr.driver
    contract = GROUPS[group]
    if not (isinstance(plugin, type) and issubclass(plugin, contract)):
        raise PluginError(f"{KIND[group]} {name!r} ({_dist(mgr)}) does not implement "
                          f"stylize.core.{contract.__name__}")
    return plugin


def _reraise(manager, entrypoint, exc):
    dist = getattr(getattr(entrypoint, "dist", None), "name", "unknown distribution")
    raise PluginError(f"plugin {entrypoint.name!r} from {dist} failed to load: "
                      f"{type(exc).__name__}: {exc}") from exc


def _dist(mgr) -> str:
    ext = mgr.extensions[0]
    return getattr(ext.entry_point.dist, "name", "unknown distribution")
