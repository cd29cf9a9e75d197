"""Finding, describing and loading plugins: built-ins register in setup.cfg exactly as a third-party package would.

``registry`` reads what is installed (nothing imported), ``misregistered``
finds entry points under look-alike groups, ``docstrings`` describes a plugin
without importing it, ``loader`` imports one by name (the only module that
imports stevedore); ``build`` finds and makes a run's plugins, one pair of
functions per group, for every caller (validation, the objective, the plan,
the start).
"""
from .build import (CONTENT, FILE, backend_class, chosen_start, loss_class, loss_classes, make_backend,
                    make_optimizer, make_start, optimizer_class, start_class)
from .docstrings import describe, first_line
from .groups import BACKENDS, GROUPS, KIND, LOSSES, OPTIMIZERS, STARTS, lookalike
from .loader import load
from .misregistered import misregistrations
from .registry import Registration, entry_points, names, registrants, registrations

__all__ = ["BACKENDS", "CONTENT", "FILE", "GROUPS", "KIND", "LOSSES", "OPTIMIZERS", "Registration", "STARTS",
           "backend_class", "chosen_start", "describe", "entry_points", "first_line", "load", "loss_class",
           "loss_classes", "lookalike", "make_backend", "make_optimizer", "make_start", "misregistrations", "names",
           "optimizer_class", "registrants", "registrations", "start_class"]
