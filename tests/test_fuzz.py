"""Bounded fuzzing (hypothesis): no image bytes and no option values crash stylize.

Three properties, also run for a set time by bench/fuzz.py:

- ``check_image_bytes``: any bytes (mutated PNG/JPEG/GIF/BMP/TIFF/WebP
  files, or noise) given to ``load_image`` give an HxWx3 float32 array in
  [0, 1], or an ImageError with a one-line message; nothing else.
- ``check_options``: any option values through ``stylize run``'s parsing,
  its early checks and ``Settings.validate`` exit 0 or with a category's
  code (2-6), one ``stylize: error:`` line, never a traceback. The images
  and the network are not loaded (the ``Job`` stops after validating).
- ``check_run``: mutated image bytes as the content of a real run on the
  tiny network: exit 0 with an output, or an error with no output.

Examples are derandomized in the test suite (the same each time) and kept
few, so the file runs in about twenty seconds.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import io
import os
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import click
import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stylize.core.errors import ImageError
from stylize.core.io.images import load_image

#: Exit codes a bad input may give: success, and the categories of stylize.core.errors.
ALLOWED_EXITS = {0, 2, 3, 4, 5, 6}


# -- seeds: small valid files of every format and common mode ----------------------

def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        _encode(rgb, "PNG"),
        _encode(rgb.convert("RGBA"), "PNG"),
        _encode(rgb.convert("P"), "PNG", transparency=0),
        _encode(Image.fromarray(np.arange(108, dtype=np.uint16).reshape(9, 12) * 600), "PNG"),
        _encode(rgb, "JPEG", quality=80),
        _encode(rgb, "JPEG", exif=exif),
        _encode(rgb.convert("L"), "JPEG"),
        _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(rgb, "JPEG", progressive=True),
        _encode(rgb.convert("P"), "GIF"),
        _encode(rgb, "BMP"),
        _encode(rgb, "TIFF"),
        _encode(rgb, "TIFF", compression="tiff_lzw"),
        _encode(rgb, "WEBP"),
    ]


SEEDS = _seeds()


MUTATIONS = ("flip", "truncate", "insert", "overwrite", "delete")


@st.composite
def mutated_images(draw, kinds=MUTATIONS, most: int = 4) -> bytes:
    """A valid small image file with a few byte-level mutations: flips, cuts, inserts, overwrites."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, most))):
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


#: For whole runs: gentler mutations, so that many files still decode and reach the network.
run_images = mutated_images(kinds=("flip", "overwrite"), most=2)

image_bytes = st.one_of(mutated_images(), st.binary(max_size=512),
                        st.sampled_from(SEEDS).flatmap(lambda seed: st.binary(max_size=256).map(
                            lambda tail, seed=seed: seed[:16] + tail)))


def check_image_bytes(data: bytes, folder: Path) -> None:
    path = folder / "fuzz.img"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except ImageError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert isinstance(image, np.ndarray) and image.dtype == np.float32
    assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 1
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0


# -- option values -----------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_numbers = st.one_of(st.integers(-2 ** 70, 2 ** 70).map(str), st.floats().map(str),
                     st.sampled_from(["0", "-1", "1", "1e308", "-0", "nan", "inf", "1e-320", "0x10", "1_000"]),
                     _text)
_names = st.one_of(st.sampled_from(["caffe", "caffe-vgg19", "gram", "content", "tv", "affine", "lbfgs", "adam",
                                    "meanstd", "spg", "", "GRAM", "gram ", "vgg"]), _text)
OPTIONS = {
    "-n": _numbers, "-l": _numbers, "-r": _numbers, "--scales": _numbers, "--seed": _numbers,
    "--threads": _numbers, "--gpu": _numbers, "--style-scale": _numbers, "--mask-tolerance": _numbers,
    "--save-every": _numbers, "--checkpoint-every": _numbers, "--style-weights": _text,
    "-b": _names, "--loss": _names, "--optimizer": _names, "--preset": _names,
    "--init": st.one_of(st.sampled_from(["content", "style", "noise"]), _text),
    "--pooling": st.one_of(st.sampled_from(["avg", "max"]), _text),
    "--precision": st.one_of(st.sampled_from(["fp32", "bf16"]), _text),
    "--set": st.one_of(_text, st.tuples(_names, _text, _numbers).map(lambda t: f"{t[0]}.{t[1]}={t[2]}")),
    "--content-layers": _text, "--style-layers": _text,
    "--prototxt": _text, "--weights": _text, "--model-dir": _text,
}
FLAGS = ["--force", "--resume", "--preserve-colors", "--match-colors", "-q"]


@st.composite
def command_lines(draw) -> tuple[list[str], str]:
    """(options, output file name): random options, values and output extensions."""
    args = []
    for option in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=6)):
        args += [option, draw(OPTIONS[option])]
    args += draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))
    stem = draw(st.text("abc-_", min_size=1, max_size=6))
    suffix = draw(st.sampled_from([".png", ".jpg", ".JPEG", ".gif", "", ".png.tmp"]))
    return args, stem + suffix


def _validate_only(content, styles, settings, **kwargs):
    """A ``Job`` without the images: the settings checks, then a clean stop."""
    settings.validate()
    raise click.exceptions.Exit(0)


def check_options(args: list[str], output_name: str, folder: Path) -> None:
    from stylize.cli.main import cli
    content = folder / "content.png"
    if not content.exists():
        Image.new("RGB", (4, 3)).save(content)
    out = folder / "out" / output_name
    argv = ["run", "-c", str(content), "-s", str(content), "-o", str(out), *args]
    with mock.patch("stylize.api.Job", _validate_only):
        result = CliRunner().invoke(cli, argv, prog_name="stylize")
    _check_result(result, argv)
    assert not (folder / "out").exists() or os.listdir(folder / "out") == [], argv


def _check_result(result, argv) -> None:
    assert result.exit_code in ALLOWED_EXITS, (argv, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert result.stderr.startswith("stylize: error: ") and result.stderr.count("\n") == 1, \
            (argv, result.stderr)


# -- end to end: mutated images through a real run -----------------------------------

@contextlib.contextmanager
def fd2_captured():
    """What C code (libtiff, Caffe's logging) writes to file descriptor 2, which CliRunner cannot see."""
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        text = ""
        try:
            yield lambda: text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")


def check_run(data: bytes, folder: Path, net: tuple[str, str]) -> None:
    from stylize.cli.main import cli
    content = folder / "fuzz-content.img"
    content.write_bytes(data)
    style = folder / "style.png"
    if not style.exists():
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(style)
    out = folder / "run-out" / "result.png"
    argv = ["run", "-b", "caffe", "--prototxt", net[0], "--weights", net[1], "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-c", str(content), "-s", str(style), "-o", str(out),
            "-l", "24", "-n", "1", "-q", "--force", "--checkpoint-every", "0"]
    with fd2_captured() as c_output:
        result = CliRunner().invoke(cli, argv, prog_name="stylize")
    _check_result(result, argv)
    assert c_output() == "", (argv, c_output())  # nothing printed by C libraries around the message
    try:
        if result.exit_code == 0:
            assert out.is_file()
        else:
            assert not out.exists(), (argv, result.stderr)
        leftovers = [n for n in os.listdir(out.parent) if n != out.name] if out.parent.exists() else []
        assert leftovers == [], leftovers
    finally:
        if out.exists():
            out.unlink()


# -- the bounded tests -------------------------------------------------------------

FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(FUZZ, max_examples=2000)
@given(image_bytes)
def test_any_bytes_load_as_an_image_or_an_image_error(data):
    with tempfile.TemporaryDirectory() as folder:
        check_image_bytes(data, Path(folder))


@settings(FUZZ, max_examples=700)
@given(command_lines())
def test_any_option_values_exit_cleanly(line):
    with tempfile.TemporaryDirectory() as folder:
        check_options(*line, Path(folder))


@functools.lru_cache(maxsize=1)
def tiny_net() -> tuple[str, str]:
    """The tiny network of tests/tinynet.py, written once per process."""
    from .tinynet import write_tiny_net
    folder = tempfile.mkdtemp(prefix="stylize-fuzz-net-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_tiny_net(Path(folder))


@settings(FUZZ, max_examples=60)
@given(run_images)
def test_mutated_images_through_a_real_run(data):
    with tempfile.TemporaryDirectory() as folder:
        check_run(data, Path(folder), tiny_net())


def test_seeds_are_all_readable():
    """The mutations start from valid files of every format."""
    with tempfile.TemporaryDirectory() as folder:
        for seed in SEEDS:
            path = Path(folder) / "seed"
            path.write_bytes(seed)
            assert load_image(path).shape[:2] in ((9, 12), (12, 9))
