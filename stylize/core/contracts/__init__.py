"""The plugin contracts: Backend, Loss, Optimizer and StartImage.

Plugins need not subclass these, but doing so documents the API and keeps
them honest: the pipeline checks ``isinstance`` when it loads a plugin.
Every plugin depends only on this module (through ``stylize.core``), never on
the CLI or on other plugins.

Arrays cross these boundaries as float32 numpy arrays. Images are HxWx3 RGB
in [0, 1]; network inputs are 1x3xHxW in the backend's own space (for Caffe
VGG: BGR, 0..255, ImageNet mean subtracted).

One module per contract: ``backend``, ``loss``, ``optimizer``, ``start``; the
data they exchange in ``features`` and ``level_images``; exact tiled evaluation's
part of the contract in ``tiled``; beside them, what plugins use:
``options`` (declared options), ``receptive`` (a backend's ``tiling()``), ``arrays``.
"""
from .backend import Backend
from .features import IMAGE, Features
from .level_images import Images, StyleTarget
from .loss import Loss
from .optimizer import Callback, Objective, Optimizer, StepResult
from .start import StartImage
from .tiled import TiledLoss, Tiling, Window, Windows, tileable

__all__ = ["IMAGE", "Backend", "Callback", "Features", "Images", "Loss", "Objective", "Optimizer", "StartImage",
           "StepResult", "StyleTarget", "TiledLoss", "Tiling", "Window", "Windows", "tileable"]
