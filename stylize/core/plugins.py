"""Finding and loading plugins: the only module that imports stevedore.

Built-in backends, losses, optimizers and starts register in stylize's own setup.cfg
exactly as a third-party package would, so everything goes through here.
A driver is loaded with ``DriverManager``, which fails loudly: an unknown
name, a name registered twice or a plugin that fails to import each become a
one-line ``PluginError`` naming the plugin and, where possible, its
distribution and the closest known name. An entry point registered under a
group that only looks like one of stylize's (``stylize.loss``,
``stylize_losses``) is never loaded, but ``misregistrations`` finds it so
that ``stylize plugins`` and the unknown-name error can point at it.
"""
from __future__ import annotations

import ast
import difflib
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from stevedore import driver, exception, extension

from .contracts import Backend, Loss, Optimizer, StartImage
from .errors import PluginError

#: Entry-point group -> the contract its plugins implement.
GROUPS = {
    "stylize.backends": Backend,
    "stylize.losses": Loss,
    "stylize.optimizers": Optimizer,
    "stylize.starts": StartImage,
}
KIND = {"stylize.backends": "backend", "stylize.losses": "loss", "stylize.optimizers": "optimizer",
        "stylize.starts": "start"}


def entry_points(group: str) -> list:
    """Entry points registered in ``group``, read without importing any plugin."""
    return extension.ExtensionManager.make_test_instance([], namespace=group).list_entry_points()


def names(group: str) -> list[str]:
    return sorted({ep.name for ep in entry_points(group)})


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
    return sorted({reg.dist for reg in _installed()
                   if reg.group == group and reg.name == name and value in (None, reg.value)})


# -- listing plugins without importing them -----------------------------------

@dataclass(frozen=True)
class Registration:
    """One entry point of a stylize group, with the distribution that declares it."""

    group: str
    name: str
    #: ``"module:Class"``, as written in the distribution's metadata.
    value: str
    dist: str
    version: str

    @property
    def kind(self) -> str:
        return KIND.get(self.group, self.group)

    def hint(self) -> str:
        """Why a registration in a look-alike group is not loaded, and the group stylize reads."""
        return (f"{self.name!r} is registered under {self.group!r} by package {self.dist}; "
                f"stylize reads {lookalike(self.group)!r}")


def _installed() -> list[Registration]:
    """Every entry point of every installed distribution, read from metadata (nothing imported).

    A distribution found twice on ``sys.path`` (an editable checkout beside
    its ``*.egg-info``) counts once, the first copy, as Python's own
    ``importlib.metadata.entry_points`` does.
    """
    seen_dists: set[str] = set()
    found = []
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or "unknown distribution"
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        if key in seen_dists:
            continue
        seen_dists.add(key)
        found.extend(Registration(ep.group, ep.name, ep.value, dist_name, dist.version or "unknown")
                     for ep in dist.entry_points)
    return found


def registrations(groups: Sequence[str] = tuple(GROUPS)) -> list[Registration]:
    """Every plugin registered in ``groups``, with its distribution's name and version.

    Read from the installed distributions' metadata; no plugin is imported.
    A name that two distributions register appears once per distribution
    (``load`` refuses it). Sorted by group (in the order given), name and
    distribution.
    """
    order = {group: i for i, group in enumerate(groups)}
    found = [reg for reg in _installed() if reg.group in order]
    return sorted(found, key=lambda r: (order[r.group], r.name, r.dist.lower()))


def _squeezed(group: str) -> str:
    return re.sub(r"[^a-z0-9]", "", group.lower())


def lookalike(group: str) -> str | None:
    """The stylize group that ``group`` looks like a misspelling of, or None.

    Case and separators are ignored (``Stylize.Backends``, ``stylize_losses``)
    and small misspellings forgiven (``stylize.loss``, ``stylize.optimiser``,
    ``stylise.losses``); stylize's own groups look like nothing.
    """
    if group in GROUPS:
        return None
    squeezed = {_squeezed(known): known for known in GROUPS}
    close = difflib.get_close_matches(_squeezed(group), list(squeezed), n=1, cutoff=0.8)
    return squeezed[close[0]] if close else None


def misregistrations() -> list[tuple[Registration, str]]:
    """Entry points in groups that look like stylize's but are not, each with the group meant.

    stylize never loads them; listing them tells an author why a plugin is
    invisible. Read from metadata, nothing imported; sorted by the group
    meant (in ``GROUPS``' order), name and distribution.
    """
    order = {group: i for i, group in enumerate(GROUPS)}
    found = [(reg, lookalike(reg.group)) for reg in _installed()]
    return sorted(((reg, meant) for reg, meant in found if meant),
                  key=lambda pair: (order[pair[1]], pair[0].name, pair[0].dist.lower()))


def describe(value: str) -> str | None:
    """First line of the docstring of the object at ``value`` (``"module:Class"``), without importing it.

    The module's source file is located the way ``import`` would find it
    (``importlib.util.find_spec`` of the top-level package, which executes
    nothing, then the package's own folders) and parsed with ``ast``. Returns
    None when that is not possible without running code: an extension module,
    a class defined elsewhere and re-exported, a docstring built at run time.
    """
    module, _, attr = value.partition(":")
    path = _module_source(module.strip())
    if path is None:
        return None
    try:
        node = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    for part in attr.strip().split(".") if attr.strip() else []:
        node = next((child for child in getattr(node, "body", ())
                     if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                     and child.name == part), None)
        if node is None:
            return None
    doc = ast.get_docstring(node)
    return first_line(doc)


def first_line(doc: str | None) -> str | None:
    """The first non-empty line of a docstring, stripped; None if there is none."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return None


def _module_source(module: str) -> Path | None:
    """Path of the ``.py`` file that ``import module`` would run, found without importing anything.

    Follows the import system's order in each folder of the parent package:
    a regular package (``part/__init__.py``), then a module (``part.py``);
    folders without ``__init__.py`` form a namespace package only if no
    folder has either.
    """
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: finds, runs nothing
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return _python_file(spec.origin)
    folders = [Path(folder) for folder in spec.submodule_search_locations or ()]
    for i, part in enumerate(rest):
        namespace = []
        for folder in folders:
            init, source = folder / part / "__init__.py", folder / f"{part}.py"
            if init.is_file():
                found = init
                break
            if source.is_file():
                found = source
                break
            if (folder / part).is_dir():
                namespace.append(folder / part)
        else:
            found = None
        if i == len(rest) - 1:
            return found
        if found is not None and found.name != "__init__.py":
            return None  # a plain module has no submodules
        folders = [found.parent] if found is not None else namespace
        if not folders:
            return None
    return None


def _python_file(origin: str | None) -> Path | None:
    if origin and origin.endswith(".py") and Path(origin).is_file():
        return Path(origin)
    return None
