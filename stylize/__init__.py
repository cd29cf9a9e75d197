"""stylize: neural style transfer (Gatys et al.) with Caffe, built from plugins.

The package's folders are its architecture: ``core`` (contracts, images,
plugin loading, pipeline), ``backends``, ``losses``, ``optimizers`` (the
built-in plugins) and ``cli`` (the command line, a thin layer over ``api``).

``stylize(content, style, **settings)`` runs what ``stylize run`` runs and
returns the image; see ``stylize.api``.
"""
from .api import Interrupted, stylize
from .core.pipeline import Settings, load_inputs, transfer

__all__ = ["Interrupted", "Settings", "load_inputs", "stylize", "transfer"]
__version__ = "0.1.0"
