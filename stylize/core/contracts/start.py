"""The StartImage contract: the picture the optimization starts from, made from the run's images."""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from .level_images import Images
from .options import Option


class StartImage(abc.ABC):
    """What the optimization starts from (``--init NAME``): a picture made from the run's images.

    Registered in the ``stylize.starts`` group. ``image`` is called once per
    run (not on a resume), before the network is loaded, so a driver can show
    the picture at once. It receives the run's images at their working size
    as the network sees them (``Images``: the content, the styles, their
    blend weights) and returns the start at ``shape``; the core converts it
    as the network sees it (luminance only with ``preserve_colors``).
    """

    #: The keyword options the constructor takes (``--set NAME.KEY=VALUE``);
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    def __init__(self, **options):
        """Accept and ignore options meant for other plugins. Keep it cheap: models load in ``image``."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise a StylizeError if this start cannot run with ``options`` (a missing file, a missing extra).

        Called by ``Settings.validate`` before any image is read; the default accepts all.
        """

    def first_level(self, levels: int) -> int:
        """The coarse-to-fine level (0 = coarsest) this start begins at, of ``levels``; the automatic
        schedule skips the levels before it (a picture that already has the coarse structure needs no
        coarse optimization). 0 (the default): every level runs."""
        return 0

    @abc.abstractmethod
    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        """The start: an HxWx3 float32 RGB image in [0, 1] of ``shape`` (height, width).

        ``seed`` (None: draw a fresh one) makes a random start the same every run.
        """
