"""What defines a run, and the checks that cost nothing: made once, before any image is read.

``Settings`` is filled in by every driver (the CLI, the Python API, the web
app, batch and video) the same way: keyword values over a quality over a
preset over the defaults (``settings_from``, the one place presets apply).
Each field declares its help, type, check and drivers (``stylize.core.request.fields``);
``validate`` runs those checks and the plugins', so a typo costs no image
reading and no network loading. ``to_dict``/``from_dict`` is the one JSON
form of settings: checkpoints, PNG metadata, the web page and batch reports.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .. import plugins
from ..contracts import options as plugin_options
from ..errors import UsageError
from ..io.image_formats import BIT_DEPTHS
from ..io.masks import TOLERANCE
from . import initial
from .fields import (BATCH, EVERY, FORM, RUN, SERVER, VIDEO, at_least, described, one_of, parse_layers, parse_text,
                     parse_weights, positive, setting)
from .presets import preset, quality
from .schedule import LADDERS


def check_tile_size(value: int | str) -> int | str:
    """``"auto"``, ``"off"`` or a whole number of pixels >= 1 (text or number); UsageError otherwise."""
    text = str(value).strip().lower()
    if text in ("auto", "off"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--tile-size {value!r}: give auto, off or a number of pixels (e.g. 512)")


def _check_weights(weights: Sequence[float] | None) -> Sequence[float] | None:
    if weights is not None and (not all(w >= 0 and math.isfinite(w) for w in weights) or sum(weights) <= 0):
        raise UsageError(f"style weights must be non-negative with a positive sum, got {list(weights)}")
    return weights


def _check_tol(tol: float) -> float:
    if not 0.0 <= tol < 1.0:
        raise UsageError(f"tol must be at least 0 (off) and below 1, got {tol}")
    return tol


def _check_gpu(gpu: int) -> int:
    if gpu < -1:
        raise UsageError(f"--gpu {gpu}: give -1 for the CPU (GPU ids start at 0)")
    return gpu


_check_bit_depth = one_of(BIT_DEPTHS, lambda value: f"--bit-depth {value}: give {' or '.join(map(str, BIT_DEPTHS))} "
                                                    "(bits per channel of the output)")


@dataclass
class Settings:
    """Everything that defines a run; each field declares its help, type, check and drivers (``fields``)."""

    backend: str = setting(
        "caffe-vgg19", flags=("-b", "--backend"), network=True,
        help="Network backend plugin (entry-point group stylize.backends); an unknown name lists the installed ones.")
    losses: Sequence[str] = setting(
        ("gram",), flags=("--loss",), multiple=True, parse=lambda text: [text], network=True,
        help="Loss plugin; repeat for several. If none of them is a content term, `content` joins automatically "
             "(Gatys transfer is content + style).")
    optimizer: str = setting(
        "lbfgs", network=True,
        help="Optimizer plugin (entry-point group stylize.optimizers; `stylize plugins` lists them).")
    # 2e4, twice the reference tool's: chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    ratio: float = setting(
        2e4, flags=("-r", "--ratio"), type=float, check=positive("ratio"),
        help="Style-to-content weight ratio; larger means more style. Means what the reference's -r meant at "
             "512x512 (its default was 1e4), at every --length (content weight scales with 512^2/area).")
    # Chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    iterations: int = setting(
        320, flags=("-n", "--iterations"), type=int, check=at_least("iterations", 1),
        help="Optimizer iterations in total over all scales, halving from the coarsest and the finest as many as "
             "the one before (2:1:1: 320 -> 160 at 128 px, 80 at 256, 80 at 512). --quality sets it for you.")
    length: int = setting(
        512, flags=("-l", "--length"), type=int, check=at_least("length", 1),
        help="Long side of the output in pixels (aspect kept); the style image is scaled to the same long side.")
    style_scale: float = setting(
        1.0, type=float, check=positive("style_scale"),
        help="Size of the style images relative to the output: below 1 gives finer strokes, above 1 larger ones.")
    style_weights: Sequence[float] | None = setting(
        None, type=float, parse=parse_weights, check=_check_weights, metavar="W1,W2", drivers=EVERY - {FORM},
        help="Blend weights of the -s images, in order, e.g. 3,1 (normalized; default equal).")
    preserve_colors: bool = setting(
        False, type=bool,
        help="Keep the content's colours: transfer style on luminance only, then take the colours of the content "
             "(Gatys et al. 2016).")
    match_colors: bool = setting(
        False, type=bool,
        help="Recolour the style images to the content's colour mean and covariance before the transfer (the "
             "other remedy of Gatys et al. 2016).")
    mask_tolerance: float = setting(
        TOLERANCE, type=float, drivers=EVERY - {VIDEO},
        help="Colour distance (0-255 RGB) under which mask colours count as one region (absorbs JPEG noise).")
    scales: int | None = setting(
        None, type=int, check=at_least("scales", 1, optional=True),
        help="Coarse-to-fine levels, each twice the size of the last; 1 turns it off. Default: halve while the "
             "smallest stays >= 128 px (512 -> 128, 256, 512); -n is split 2:1:1 over them.")
    ladder: str = setting(
        "octave", choices=tuple(LADDERS),
        check=one_of(tuple(LADDERS), lambda value: f"ladder {value!r}: choose one of {', '.join(LADDERS)}"),
        help="Steps between the coarse-to-fine scales' lengths. octave: each twice the last (512 -> 128, 256, "
             "512); sqrt2: sqrt(2) times (512 -> 128, 181, 256, 362, 512), smaller steps from one scale's result "
             "to the next, -n split the same way (each scale sqrt(2) times fewer iterations than the one before, "
             "the finest as many as the one before it).")
    # Chosen by bench/quality.py to stop only a level that has stopped changing (bench/README.md).
    tol: float = setting(
        1e-3, type=float, check=_check_tol, network=True,
        help="Stop a scale (and, at the last one, the run) once the loss fell by less than this fraction over the "
             "last 20 iterations: the picture has stopped changing. 0 runs every iteration.")
    init: str = setting(
        "content", flags=("-i", "--init"),
        help="Starting image: a start's name (content, style, noise: pink, see --seed; fast: a feed-forward "
             "picture, pip install 'stylize[fast]'; `stylize plugins` lists all) or an image path. Options: "
             "--set NAME.KEY=VALUE (fast.level=-1 starts at the finest level).")
    seed: int | None = setting(
        None, type=int, minimum=0, help="Random seed for --init noise (same seed, same output).")
    gpu: int = setting(
        -1, flags=("-g", "--gpu"), type=int, result=False, network=True, drivers=EVERY - {FORM},
        check=_check_gpu,
        help="GPU id, -1 for the CPU. A GPU needs the CUDA build of pycaffe (make setup-gpu); the CPU-only "
             "build refuses it.")
    threads: int | None = setting(
        None, type=int, minimum=1, result=False, check=at_least("threads", 1, optional=True),
        drivers=EVERY - {FORM} | {SERVER},
        help="BLAS threads (default: OpenBLAS's own choice, all cores unless OPENBLAS_NUM_THREADS or "
             "OMP_NUM_THREADS is set).")
    content_layers: Sequence[str] | None = setting(
        None, parse=parse_layers, metavar="L1,L2", network=True,
        help="Layers for content terms (default: the backend's, conv4_2 for VGG).")
    style_layers: Sequence[str] | None = setting(
        None, parse=parse_layers, metavar="L1,L2", network=True,
        help="Layers for style terms (default: the backend's, conv1_1..conv5_1 for VGG).")
    tile_size: int | str = setting(
        "auto", parse=check_tile_size, check=check_tile_size, result=False, network=True, metavar="auto|off|N",
        drivers=EVERY - {FORM},
        help="Evaluate the network on tiles, so that any size fits in memory, with the same result (exact: each "
             "tile adds a halo of the network's receptive field, 80 px for VGG19, and Gram matrices are summed "
             "over tiles; each evaluation costs more). auto: tile only a scale whose whole image would not fit "
             "the memory limit, with the cheapest tiles that fit; N: tiles of at most N x N px; off: never (a run "
             "that does not fit is refused).")
    # How the result is written, not what it is: a resume may change it.
    bit_depth: int = setting(
        8, type=int, choices=tuple(BIT_DEPTHS), result=False, check=_check_bit_depth,
        help="Bits per channel of the output and its snapshots. 16 (.png or .tif only; .jpg is refused before "
             "any work) keeps the optimizer's full precision: 65536 levels instead of 256, no banding in smooth "
             "areas when the picture is edited further.")
    # Not fingerprinted: a resume may move clusters. Not video's (its frames are small). A server's for every
    # job, not the page's: a visitor must not make the server connect to an address of their choosing.
    scheduler: str | None = setting(
        None, result=False, network=True, metavar="ADDRESS", drivers=frozenset({RUN, BATCH, SERVER}),
        help="A Dask scheduler (e.g. tcp://10.0.0.5:8786): the tiles of every tiled scale (targets and "
             "evaluations) run on its workers, sized for the smallest worker's memory, each loading the network "
             "once; the optimizer and the image stay here; same result as the tiled run here. Scales evaluated "
             "whole run here. A worker with another stylize version or other network files is refused by name. "
             "See docs/cluster.md.")
    #: Options for plugins, by plugin name: ``{"adam": {"lr": 2.0}, "tv": {"weight": 1e5}}``; a loss's
    #: ``weight`` replaces its default weight, ``layers`` its layers. The drivers' ``--set``, not a flag.
    options: dict[str, dict[str, Any]] = setting(
        factory=dict, network=True, drivers=frozenset(),
        help="Options for plugins, by plugin name: --set PLUGIN.KEY=VALUE.")

    def validate(self) -> None:
        """Fail fast, before any image is read: each field's own check, the start, every plugin and option."""
        for name, (about, _) in described(type(self)).items():
            if about.check is not None:
                setattr(self, name, about.check(getattr(self, name)))
        self._validate_plugins(initial.check(self))

    def _validate_plugins(self, start: tuple[str, type]) -> None:
        """Every plugin exists, and every option given to one is an option it declares."""
        backend = plugins.backend_class(self)
        backend.check_device(self.gpu)
        used = {self.backend: ("backend", backend, ()),
                self.optimizer: ("optimizer", plugins.optimizer_class(self), ())}
        losses = plugins.loss_classes(self)
        # Options for content are taken even where a loss of the content role stands in for it.
        losses.setdefault(plugins.CONTENT, plugins.loss_class(plugins.CONTENT))
        for name, cls in losses.items():
            used[name] = ("loss", cls, plugin_options.LOSS_OPTIONS)
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
        """The settings of quality ``quality_name`` over preset ``name`` (see ``stylize.core.request.presets``;
        either may be None), with ``given`` on top: a preset says what kind of picture, a quality how long
        to work on it (``--preset photo --quality draft`` is a draft of the photo preset)."""
        chosen = preset(name) if name else {}
        merged = {**chosen, **quality(quality_name), **given}
        if "options" in chosen:  # a preset's plugin options under the user's, key by key
            used = [merged.get(name, getattr(cls, name)) for name in ("backend", "optimizer", "init")]
            merged["options"] = merge_options(chosen["options"], given.get("options") or {},
                                              [*used, *merged.get("losses", cls.losses)])
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values (lists, not tuples), every field by name: the one stored form."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Settings":
        """Settings from ``to_dict``'s form; a key that is no field is a one-line UsageError."""
        try:
            return settings_from(None, None, None, cls=cls, **data)
        except TypeError as e:
            raise UsageError(str(e).replace("stylize() got ", "settings: ")) from None

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        """Settings from ``to_json``'s text; keys this version does not know (a newer one's) are left out."""
        fields = read_json(text, cls)
        if fields is None:
            raise UsageError("settings: not the JSON form of stylize settings (an object of fields)")
        return cls.from_dict(fields)

    def options_for(self, name: str) -> dict[str, Any]:
        return dict(self.options.get(name, {}))


def merge_options(under: dict[str, dict[str, Any]], over: dict[str, dict[str, Any]],
                  used: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A preset's plugin options (``under``) with the user's (``over``) on top, plugin by plugin and key by
    key; the preset's for plugins the run does not use (``used``: a loss the user left out) are dropped."""
    return {name: {**under.get(name, {}), **over.get(name, {})}
            for name in {**{name: 0 for name in under if name in used}, **over}}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        return value.item()
    return value


def read_json(text: str, cls: type = None) -> dict[str, Any] | None:
    """The fields (those ``cls`` knows) of settings in their JSON form, e.g. a PNG's ``stylize:settings``;
    None when ``text`` is not that form (an image of an older stylize holds a ``Settings(...)`` repr)."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    known = {f.name for f in dataclasses.fields(cls or Settings)}
    return {name: value for name, value in data.items() if name in known}


def settings_from(settings: Settings | None = None, preset: str | None = None, quality: str | None = None, *,
                  cls: type = None, **options: Any) -> Settings:
    """``Settings`` from keyword options over a preset and a quality, or over given settings (not both).

    The one function every driver makes settings with: a field given as text (``"conv1_1,conv2_1"``) is
    parsed by its declaration; an unknown name is a TypeError that suggests the closest field."""
    cls = cls or (type(settings) if settings is not None else Settings)
    about = described(cls)
    for name in options:
        if name not in about:
            close = difflib.get_close_matches(name, sorted(about), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; settings are {', '.join(sorted(about))}"
            raise TypeError(f"stylize() got an unknown setting {name!r}{hint}")
    for name, value in options.items():
        if isinstance(value, str) and about[name][0].parse is not None:
            options[name] = parse_text(about[name][0], value)
    if settings is not None:
        if preset is not None or quality is not None:
            raise UsageError("give either settings or a preset/quality, not both")
        return dataclasses.replace(settings, **options)
    return cls.from_preset(preset, quality, **options)
