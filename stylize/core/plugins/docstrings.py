"""A plugin's one-line description, read from its source without importing it (so listing runs no plugin code)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path


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
