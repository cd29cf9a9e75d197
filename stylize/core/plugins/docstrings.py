"""A plugin's one-line description, read from its source without importing it (so listing runs no plugin code)."""
from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from pathlib import Path


def describe(value: str) -> str | None:
    """First line of the docstring of the object at ``value`` (``"module:Class"``), without importing it.

    The module's source file is located by the import system's finders,
    without running any package's ``__init__``, and parsed with ``ast``. Returns
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

    The import system's own finders search: ``importlib.util.find_spec`` for
    the top-level name (which runs nothing), then, level by level, each folder's
    finder from ``sys.path_hooks`` (a package before a module, as ``import``
    tries them), so that no package's ``__init__`` runs on the way.
    """
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    for depth in range(1, len(rest) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return None  # not found, or a plain module, which has no submodules
        spec = _find(".".join([top, *rest[:depth]]), list(spec.submodule_search_locations))
    return _python_file(spec.origin) if spec is not None else None


def _find(name: str, folders: list[str]) -> importlib.machinery.ModuleSpec | None:
    """The spec ``import`` finds for ``name`` in a package's ``folders``; a namespace package's portions joined."""
    portions: list[str] = []
    for folder in folders:
        spec = next((finder.find_spec(name) for finder in _finders(folder)), None)
        if spec is None:
            continue
        if spec.loader is not None:
            return spec
        portions.extend(spec.submodule_search_locations or ())
    if not portions:
        return None
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = portions
    return spec


def _finders(folder: str):
    """The finder ``import`` uses for ``folder``: the first of ``sys.path_hooks`` that takes it."""
    for hook in sys.path_hooks:
        try:
            yield hook(folder)
            return
        except ImportError:
            continue


def _python_file(origin: str | None) -> Path | None:
    if origin and origin.endswith(".py") and Path(origin).is_file():
        return Path(origin)
    return None
