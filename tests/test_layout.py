"""stylize.core's rooms: every module in a sub-package, the rooms layered with no cycle, behind a thin face.

Read from the source with ``ast`` (``tests/test_imports.py``'s graph: nothing is
imported, imports inside functions and under ``TYPE_CHECKING`` count), so a
module that lands in the wrong room, or an arrow that points up, fails here
with the modules that make it. That plugins import only the face is
``test_imports.test_plugins_import_only_the_core_face``.
"""
from __future__ import annotations

import ast

from .test_imports import ROOT, cycles, import_graph

CORE = ROOT / "core"
#: The rooms, lowest first: a room may import only rooms before it (and ``errors``, which every room raises).
LAYERS = ("errors", "contracts", "io", "plugins", "request", "evaluation", "planning", "run")
#: What stays flat in stylize/core: the face plugins import, and the errors every room raises.
FLAT = {"__init__.py", "errors.py"}


def room(module: str) -> str | None:
    """The room of a core module (``stylize.core.planning.plan`` -> ``planning``); None for the face or outside core."""
    parts = module.split(".")
    if parts[:2] != ["stylize", "core"] or len(parts) < 3:
        return None
    return parts[2]


def room_arrows() -> dict[tuple[str, str], list[str]]:
    """(room, room it imports) -> the module imports that make the arrow."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for module, targets in import_graph().items():
        here = room(module)
        for target in sorted(targets):
            there = room(target)
            if here and there and here != there:
                arrows.setdefault((here, there), []).append(f"{module} -> {target}")
    return arrows


def test_core_is_rooms():
    """Only the face and the errors are flat; every other module lives in a room a newcomer can name."""
    flat = sorted(p.name for p in CORE.glob("*.py") if p.name not in FLAT)
    assert not flat, f"stylize/core/{', '.join(flat)}: put each in a room (one of {', '.join(LAYERS[1:])})"
    rooms = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").is_file())
    assert rooms == sorted(LAYERS[1:]), f"rooms {rooms}: add a new one to LAYERS, in its place"


def test_rooms_have_no_import_cycle():
    arrows = room_arrows()
    graph = {name: set() for name in LAYERS}
    for here, there in arrows:
        graph.setdefault(here, set()).add(there)
    found = cycles(graph)
    assert not found, "; ".join(" -> ".join(cycle) + f" (through {arrows[(cycle[0], cycle[1])][0]})"
                                for cycle in found)


def test_rooms_import_only_rooms_below():
    """The layers in LAYERS' order: the run plans, planning evaluates, evaluation reads the settings, and so on down."""
    order = {name: i for i, name in enumerate(LAYERS)}
    upward = [f"{here} imports {there}: {', '.join(how[:3])}" for (here, there), how in sorted(room_arrows().items())
              if order.get(there, len(LAYERS)) > order.get(here, len(LAYERS))]
    assert not upward, "; ".join(upward)


def test_the_layout_test_sees_rooms():
    """The checks above read real arrows: the run imports planning, planning the evaluation."""
    arrows = room_arrows()
    assert ("run", "planning") in arrows and ("planning", "evaluation") in arrows
    assert room("stylize.core.planning.plan") == "planning" and room("stylize.core") is None


def test_the_face_is_thin():
    """``stylize.core`` and each room's ``__init__`` re-export; they define nothing of their own (the modules do)."""
    for init in [CORE / "__init__.py", *CORE.glob("*/__init__.py")]:
        tree = ast.parse(init.read_text())
        defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert not defined, f"{init.relative_to(ROOT.parent)} defines {defined}: put them in a module of the room"
