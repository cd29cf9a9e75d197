"""The core's face for plugins: everything a backend, loss, optimizer or start may use of stylize.

The built-in plugins import nothing else of stylize, and neither should a
third party's: what the core keeps behind this face can then change
without breaking a plugin.
"""
from .contracts import (IMAGE, Backend, Callback, Features, Images, Loss, Objective, Optimizer, StartImage,
                        StepResult, StyleTarget, TiledLoss, Tiling, Window, Windows)
from .contracts.arrays import squared_norm
from .contracts.options import Option
from .contracts.receptive import Reach, Step, chain_tiling, make_tiling
from .errors import (ImageError, ModelError, NumericalError, PluginError, ResourceError, StylizeError,
                     UsageError, one_line)
from .io.config import stylize_home
from .io.files import atomic_write, file_digest, move_into_place, staging_folder
from .io.images import load_image, resize
from .io.masks import resize_regions
from .planning.memory import LENGTH_STEP, resident_bytes

__all__ = [
    # contracts
    "IMAGE", "Backend", "Callback", "Features", "Images", "Loss", "Objective", "Optimizer", "Option",
    "StartImage", "StepResult", "StyleTarget", "TiledLoss", "Tiling", "Window", "Windows",
    # errors a plugin raises (each is one line for the user, with its own exit code)
    "ImageError", "ModelError", "NumericalError", "PluginError", "ResourceError", "StylizeError", "UsageError",
    "one_line",
    # helpers
    "LENGTH_STEP", "atomic_write", "file_digest", "load_image", "move_into_place", "resident_bytes", "resize",
    "resize_regions", "squared_norm", "staging_folder", "stylize_home",
    # a backend's tiling(): receptive fields of convolutions and poolings
    "Reach", "Step", "chain_tiling", "make_tiling",
]
