"""What defines a run, and the checks that cost nothing: made once, before any image is read.

``Settings`` is filled in by every driver (the CLI, the Python API, and the
drivers to come) the same way: keyword values over a preset over the
defaults (``settings_from``). ``validate`` is the one place that refuses a
setting, so a typo costs no image reading and no network loading, and the
Python API refuses exactly what the command line refuses.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import initial
from . import options as plugin_options
from . import plugins
from .errors import UsageError
from .image_formats import BIT_DEPTHS
from .masks import TOLERANCE
from .presets import preset, quality
from .schedule import LADDERS


@dataclass
class Settings:
    """Everything that defines a run; the CLI and the Python API fill it in."""

    backend: str = "caffe-vgg19"
    losses: Sequence[str] = ("gram",)
    optimizer: str = "lbfgs"
    #: Weight of style terms relative to content terms (Gatys' beta/alpha) for a
    #: 512x512 image; see ``objective.content_weight``. 2e4, twice the reference
    #: tool's: chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    ratio: float = 2e4
    #: Total optimizer iterations, over all scales (split 2:1:1 coarse to fine, ``schedule.split_iterations``).
    #: Chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    iterations: int = 320
    #: Long side of the output in pixels; style images are scaled to match.
    length: int = 512
    #: Long side of the style images relative to the output's (the reference's --style-scale).
    style_scale: float = 1.0
    #: Blend weights of several style images (normalized); None weighs them equally.
    style_weights: Sequence[float] | None = None
    #: Keep the content's colours: style is transferred on luminance only.
    preserve_colors: bool = False
    #: Recolour the style images to the content's colour mean and covariance first.
    match_colors: bool = False
    #: Distance (0..255 RGB) under which two semantic-mask colours are the same region.
    mask_tolerance: float = TOLERANCE
    #: Coarse-to-fine levels; None picks them from ``length`` (see ``schedule.scale_lengths``).
    scales: int | None = None
    #: The lengths' steps between levels: "octave" (each twice the last) or "sqrt2" (``schedule.LADDERS``).
    ladder: str = "octave"
    #: Stop a level once its objective fell by less than this fraction over the last
    #: ``convergence.WINDOW`` iterations; 0 runs every iteration. Chosen by bench/quality.py to stop only
    #: a level that has stopped changing (bench/README.md, "Figures behind the constants").
    tol: float = 1e-3
    #: The start (``stylize.starts``: "content", "style", "noise", ...; ``stylize plugins``), or the path of an image.
    init: str = "content"
    seed: int | None = None
    gpu: int = -1
    #: BLAS threads while optimizing; None leaves OpenBLAS as the user set it
    #: (all cores unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS say otherwise).
    threads: int | None = None
    #: Layers for content / style terms; None takes the backend's defaults.
    content_layers: Sequence[str] | None = None
    style_layers: Sequence[str] | None = None
    #: Tiled evaluation (``stylize.core.tiling``): "auto" tiles only a level whose whole image
    #: does not fit the memory limit, "off" never, N: cores of at most N x N pixels.
    tile_size: int | str = "auto"
    #: Bits per channel of the output and snapshots: 8, or 16 (PNG and TIFF only; ``image_formats``).
    #: How the result is written, not what it is: a resume may change it.
    bit_depth: int = 8
    #: A Dask scheduler's address: each evaluation's tiles run on its workers (``stylize.cluster``);
    #: levels the plan evaluates whole run here. None: everything here.
    scheduler: str | None = None
    #: Options for plugins, by plugin name: ``{"adam": {"lr": 2.0}, "tv": {"weight": 1e5}}``.
    #: A loss's ``weight`` replaces its default weight; ``layers`` its layers.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> None:
        """Fail fast, before any image is read: ranges, every plugin name and every plugin option."""
        for name in ("iterations", "length"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be at least 1, got {self.threads}")
        if not 0.0 <= self.tol < 1.0:
            raise UsageError(f"tol must be at least 0 (off) and below 1, got {self.tol}")
        if self.scales is not None and self.scales < 1:
            raise UsageError(f"scales must be at least 1, got {self.scales}")
        if self.ladder not in LADDERS:
            raise UsageError(f"ladder {self.ladder!r}: choose one of {', '.join(LADDERS)}")
        start = initial.check(self)
        for name in ("ratio", "style_scale"):
            if not getattr(self, name) > 0 or not np.isfinite(getattr(self, name)):
                raise UsageError(f"{name} must be a positive number, got {getattr(self, name)}")
        weights = self.style_weights
        if weights is not None and (not all(w >= 0 and np.isfinite(w) for w in weights) or sum(weights) <= 0):
            raise UsageError(f"style weights must be non-negative with a positive sum, got {list(weights)}")
        self.tile_size = check_tile_size(self.tile_size)
        if self.bit_depth not in BIT_DEPTHS:
            raise UsageError(f"--bit-depth {self.bit_depth}: give {' or '.join(map(str, BIT_DEPTHS))} "
                             "(bits per channel of the output)")
        if self.gpu < -1:
            raise UsageError(f"--gpu {self.gpu}: give -1 for the CPU (GPU ids start at 0)")
        self._validate_plugins(start)

    def _validate_plugins(self, start: tuple[str, type]) -> None:
        """Every plugin exists, and every option given to one is an option it declares."""
        backend = plugins.load("stylize.backends", self.backend)
        backend.check_device(self.gpu)
        used = {self.backend: ("backend", backend, ()),
                self.optimizer: ("optimizer", plugins.load("stylize.optimizers", self.optimizer), ())}
        for name in dict.fromkeys(["content", *self.losses]):
            used[name] = ("loss", plugins.load("stylize.losses", name), plugin_options.LOSS_OPTIONS)
        used.setdefault(start[0], ("start", start[1], ()))  # a start named like another plugin shares its options
        stray = sorted(set(self.options) - set(used))
        if stray:
            raise UsageError(f"options given for {', '.join(stray)}, which this run does not use "
                             f"(it uses {', '.join(sorted(used))})")
        # Values from the command line arrive as text or numbers: converted to the declared types.
        self.options = {name: plugin_options.check(used[name][0], name, used[name][1], given, used[name][2])
                        for name, given in self.options.items()}
        backend.check_options(self.options_for(self.backend))
        initial.check_options(self, *start)

    @classmethod
    def from_preset(cls, name: str | None, quality_name: str | None = None, **given: Any) -> "Settings":
        """The settings of quality ``quality_name`` over preset ``name`` (see ``stylize.core.presets``;
        either may be None), with ``given`` on top: a preset says what kind of picture, a quality how long
        to work on it (``--preset photo --quality draft`` is a draft of the photo preset)."""
        chosen = preset(name) if name else {}
        merged = {**chosen, **quality(quality_name), **given}
        if "options" in chosen:  # a preset's plugin options under the user's, key by key
            used = [merged.get(name, getattr(cls, name)) for name in ("backend", "optimizer", "init")]
            merged["options"] = merge_options(chosen["options"], given.get("options") or {},
                                              [*used, *merged.get("losses", cls.losses)])
        return cls(**merged)

    def options_for(self, name: str) -> dict[str, Any]:
        return dict(self.options.get(name, {}))


def merge_options(under: dict[str, dict[str, Any]], over: dict[str, dict[str, Any]],
                  used: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A preset's plugin options (``under``) with the user's (``over``) on top, plugin by plugin and key by
    key; the preset's for plugins the run does not use (``used``: a loss the user left out) are dropped."""
    return {name: {**under.get(name, {}), **over.get(name, {})}
            for name in {**{name: 0 for name in under if name in used}, **over}}


def check_tile_size(value: int | str) -> int | str:
    """``"auto"``, ``"off"`` or a whole number of pixels >= 1 (text or number); UsageError otherwise."""
    text = str(value).strip().lower()
    if text in ("auto", "off"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--tile-size {value!r}: give auto, off or a number of pixels (e.g. 512)")


#: Settings fields that take a list of names; a single string is one name (losses) or comma-separated.
_LISTS = {"losses": lambda text: [text], "content_layers": lambda text: text.replace(",", " ").split(),
          "style_layers": lambda text: text.replace(",", " ").split()}


def settings_from(settings: Settings | None = None, preset: str | None = None, quality: str | None = None,
                  **options: Any) -> Settings:
    """``Settings`` from keyword options over a preset and a quality, or over given settings (not both)."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in options:
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; settings are {', '.join(sorted(fields))}"
            raise TypeError(f"stylize() got an unknown setting {name!r}{hint}")
    for name, split in _LISTS.items():
        if isinstance(options.get(name), str):
            options[name] = split(options[name])
    if settings is not None:
        if preset is not None or quality is not None:
            raise UsageError("give either settings or a preset/quality, not both")
        return dataclasses.replace(settings, **options)
    return Settings.from_preset(preset, quality, **options)
