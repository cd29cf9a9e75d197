"""stylize: neural style transfer (Gatys et al.) with Caffe, built from plugins.

The package's folders are its architecture: ``core`` (contracts, images,
plugin loading, settings, the run plan, the pipeline and the Job),
``backends``, ``losses``, ``optimizers``, ``starts`` (the built-in plugins),
``testing`` (the contract tests plugin authors run), ``cluster`` (one
picture's evaluations spread over Dask workers), and the drivers, each a thin
layer over the Job: ``cli`` (the command line), ``serve`` (the web app),
``batch`` (many runs on Dask) and ``video`` (frames with temporal
consistency).

``stylize(content, style, **settings)`` runs what ``stylize run`` runs and
returns the image; ``Job`` drives the same run step by step, with events
(``stylize.events``) and ``cancel()``. See ``stylize.api``.
"""
from . import batch  # callable: stylize.batch(jobs, client=None) runs jobs on Dask (see stylize.batch)
from . import cluster  # registers --scheduler (one picture's tiles on Dask) with core's hook, stylize.core.evaluation.remote
from .api import Cancelled, Interrupted, Job, events, stylize
from .core.io.inputs import load_inputs
from .core.request.settings import Settings
from .core.run.pipeline import transfer

__all__ = ["Cancelled", "Interrupted", "Job", "Settings", "batch", "events", "load_inputs", "stylize", "transfer"]
__version__ = "0.1.0"
