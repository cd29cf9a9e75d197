"""Finding, describing and loading plugins: built-ins register in setup.cfg exactly as a third-party package would.

``registry`` reads what is installed (nothing imported), ``misregistered``
finds entry points under look-alike groups, ``docstrings`` describes a plugin
without importing it, ``loader`` imports one by name (the only module that
imports stevedore); ``build`` makes a run's optimizer (its backend and losses:
``core.objective``, its start: ``core.initial``).
"""
from .build import make_optimizer
from .docstrings import describe, first_line
from .groups import GROUPS, KIND, lookalike
from .loader import load
from .misregistered import misregistrations
from .registry import Registration, entry_points, names, registrants, registrations

__all__ = ["GROUPS", "KIND", "Registration", "describe", "entry_points", "first_line", "load", "lookalike",
           "make_optimizer", "misregistrations", "names", "registrants", "registrations"]
