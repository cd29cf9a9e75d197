"""Starting images, the core's side: ``--init`` checked before any image is read, and the start's picture checked.

The starts themselves are plugins (``stylize/starts``), found and made by
``plugins.start_class``/``make_start``; ``--init`` takes a start's name or,
as always, the path of an image (the ``file`` start).
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from .. import plugins
from ..contracts import Images
from ..errors import PluginError, UsageError
from ..io.inputs import blend_weights


class Settings(Protocol):
    """What of ``stylize.core.request.settings.Settings`` a start needs (settings.py imports this module)."""

    init: str
    seed: int | None
    style_weights: Sequence[float] | None

    def options_for(self, name: str) -> Mapping[str, Any]: ...


def named() -> tuple[str, ...]:
    """The starts ``--init`` takes by name alone (every registered one but ``file``, which needs a path)."""
    return tuple(name for name in plugins.names(plugins.STARTS) if name != plugins.FILE)


def __getattr__(name: str) -> Any:
    if name == "NAMED":  # read when asked, so a start installed later is offered too
        return named()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check(settings: Settings) -> tuple[str, type]:
    """``settings.init`` names a start or an existing image file: its (name, class), loaded and checked."""
    if plugins.chosen_start(settings.init)[1] and not Path(settings.init).is_file():
        close = difflib.get_close_matches(settings.init, named(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"--init {settings.init!r}: not {', '.join(named())} or an existing image file{hint}")
    return plugins.start_class(settings)


def check_options(settings: Settings, name: str, cls: type) -> None:
    """The start's own check of its options (a file that exists, an extra that is installed)."""
    cls.check_options({**plugins.chosen_start(settings.init)[1], **settings.options_for(name)})


def first_level(settings: Settings, levels: int) -> int:
    """The level the start begins at, of ``levels`` (``StartImage.first_level``; -1 the finest), within 0..levels-1."""
    first = int(plugins.make_start(settings).first_level(levels))
    return min(max(first + levels if first < 0 else first, 0), levels - 1)


def start_image(settings: Settings, content: np.ndarray, styles: Sequence[np.ndarray],
                shape: tuple[int, int]) -> np.ndarray:
    """The start's picture at ``shape`` from the images as the network sees them, checked and in [0, 1]."""
    image = plugins.make_start(settings).image(Images(content, list(styles), blend_weights(settings.style_weights,
                                                                                   len(styles))),
                                       tuple(shape), settings.seed)
    image = np.asarray(image)
    if image.shape != (*shape, 3) or not np.issubdtype(image.dtype, np.floating):
        raise PluginError(f"start {plugins.chosen_start(settings.init)[0]!r} made a {image.dtype} image of shape "
                          f"{image.shape}; expected float RGB of shape {(*shape, 3)}")
    return np.clip(np.nan_to_num(image, nan=0.5), 0.0, 1.0).astype(np.float32)
