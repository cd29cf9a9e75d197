"""The core: plugin contracts, images, plugin loading and the pipeline.

Plugins import what they need from here and from nowhere else in stylize.
"""
from .arrays import squared_norm
from .contracts import (IMAGE, Backend, Callback, Features, Loss, Objective, Optimizer, StepResult,
                        StyleTarget)
from .masks import resize_regions
from .errors import ImageError, ModelError, NumericalError, PluginError, StylizeError, UsageError

__all__ = [
    "IMAGE", "Backend", "Callback", "Features", "Loss", "Objective", "Optimizer", "StepResult", "StyleTarget",
    "squared_norm", "resize_regions", "ImageError", "NumericalError", "ModelError", "PluginError", "StylizeError", "UsageError",
]
