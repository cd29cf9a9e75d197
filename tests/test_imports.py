"""How stylize's modules import each other: no cycles, and plugins use only the core's face.

The graph is read from the source with ``ast`` (nothing is imported), counting
imports inside functions too: a cycle hidden in a function still means two
modules that cannot be understood, or moved, one without the other. Importing
a module also runs its package's ``__init__``; that implicit edge is left out,
so a package importing its own submodules is not a cycle with them.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "stylize"
#: Packages of built-in plugins: like third-party ones, they may use only ``stylize.core``.
PLUGIN_PACKAGES = ("stylize.backends", "stylize.losses", "stylize.optimizers", "stylize.starts")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The stylize modules that ``name`` imports anywhere in its source.

    ``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(part for part in (base, node.module) if part)
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                         for alias in node.names)
    return {target for target in found if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path a -> ... -> a."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(set(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_within(graph, group) for group in groups]


def _path_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, through the group only."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in {group}")


def _in(module: str, packages) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def test_the_graph_sees_known_imports():
    """The reader resolves relative, function-level and ``from pkg import module`` imports."""
    graph = import_graph()
    assert "stylize.backends.caffe_net" in graph["stylize.backends.caffe_vgg"]  # from .caffe_net import
    assert "stylize.backends.costs" in graph["stylize.backends.caffe_net"]  # from . import costs
    assert "stylize.backends.pastiche" in graph["stylize.backends.zoo"]    # inside a function
    assert "stylize.backends.zoo" in graph["stylize.cli.models"]           # from stylize.backends import zoo
    assert "stylize.core" in graph["stylize.backends.caffe_vgg"]           # from stylize.core import Option
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c", "a"]]


def _described(found: list[list[str]]) -> str:
    return "import cycle(s): " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, _described(found)


def test_plugins_import_only_the_core_face():
    """Built-in plugins use stylize as a third-party plugin would: ``stylize.core`` and their own package."""
    wrong = []
    for module, targets in import_graph().items():
        home = next((package for package in PLUGIN_PACKAGES if _in(module, [package])), None)
        if home is None:
            continue
        wrong += [f"{module} imports {target}" for target in sorted(targets)
                  if target != "stylize.core" and not _in(target, [home])]
    assert not wrong, "; ".join(wrong)


def test_only_the_plugin_loader_imports_stevedore():
    """One module loads plugins (stevedore's DriverManager); listing them reads metadata, and no
    production code uses stevedore's test helper (``make_test_instance``)."""
    importers, helper = set(), set()
    for name, path in modules().items():
        source = path.read_text()
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "stevedore" for a in node.names):
                importers.add(name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "stevedore":
                importers.add(name)
        if "make_test_instance" in source:
            helper.add(name)
    assert importers == {"stylize.core.plugins.loader"}
    assert not helper, f"stevedore's test helper in {sorted(helper)}"
