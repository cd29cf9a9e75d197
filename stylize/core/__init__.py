"""The core: plugin contracts, images, plugin loading and the pipeline.

Plugins import what they need from here and from nowhere else in stylize.
"""
from .contracts import Backend, Callback, Features, Loss, Objective, Optimizer, StepResult
from .errors import ImageError, ModelError, PluginError, StylizeError, UsageError

__all__ = [
    "Backend", "Callback", "Features", "Loss", "Objective", "Optimizer", "StepResult",
    "ImageError", "ModelError", "PluginError", "StylizeError", "UsageError",
]
