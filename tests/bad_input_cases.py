"""The bad inputs of issue 7 as data: each case builds its files, runs ``stylize run`` and says what must happen.

Shared by tests/test_bad_inputs.py (one parametrized test) and
bench/bad_inputs.py (the table of cases, exit codes and messages), so the
two cannot drift apart. Runs use the tiny network of tests/tinynet.py
(``--backend caffe``) at ``-l 24 -n 2``, so a case that gets through every
check finishes in a fraction of a second.

Cases that reach Caffe with a broken model run in a child process: if a
check missed, Caffe's abort (SIGABRT) kills the child, not the test run,
and shows up as a negative return code.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from click.testing import CliRunner
from PIL import Image

from stylize.backends.cuda import refusal_words
from stylize.core.io.images import MAX_PIXELS
from stylize.core.io.png_text import chunk

from .tinynet import PROTOTXT

# Exit codes, by category (stylize.core.errors; click's own usage errors are 2 as well).
OK, USAGE, IMAGE, MODEL, PLUGIN, NUMERICAL = 0, 2, 3, 4, 5, 6


@dataclass
class Workspace:
    """A folder with a content and a style photo, the tiny network, and an output path not written yet."""

    root: Path
    prototxt: str
    weights: str

    @property
    def content(self) -> Path:
        return self.root / "in" / "content.png"

    @property
    def style(self) -> Path:
        return self.root / "in" / "style.png"

    @property
    def out(self) -> Path:
        return self.root / "out" / "result.png"

    def setup(self) -> "Workspace":
        rng = np.random.default_rng(0)
        for path in (self.content, self.style):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
        return self

    def file(self, name: str, data: bytes | str) -> Path:
        """Write ``data`` to in/``name``."""
        path = self.root / "in" / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def image(self, name: str, img: Image.Image, **save) -> Path:
        path = self.root / "in" / name
        img.save(path, **save)
        return path

    def args(self, *extra: str, content=None, style=None, output=None,
             model: list[str] | None = None) -> list[str]:
        """``stylize run`` on the tiny network; later options win over earlier ones in click."""
        model = ["-b", "caffe", "--prototxt", self.prototxt, "--weights", self.weights] if model is None else model
        return ["run", *model, "--content-layers", "conv2", "--style-layers", "conv1,conv2",
                "-c", str(content or self.content), "-s", str(style or self.style),
                "-o", str(output or self.out), "-l", "24", "-n", "2", "-q", *extra]


@dataclass(frozen=True)
class Case:
    """One bad (or merely unusual) input and what ``stylize run`` must do with it."""

    name: str
    category: str
    args: Callable[[Workspace], list[str]]
    exit_code: int
    #: Must appear in the one-line message (errors only).
    fragment: str = ""
    #: What must be at the output path afterwards: "absent"; "written" (success,
    #: and on NaN, where the last good image is kept by design); "untouched" (a
    #: file that was there before the run is still there, unchanged).
    output: str = "absent"
    #: Run in a child process: the input reaches Caffe, which aborts on what it cannot take.
    isolate: bool = False
    #: Extra environment variables.
    env: Callable[[Workspace], dict[str, str]] | None = None
    #: Expected (width, height) of a written output.
    size: tuple[int, int] | None = None
    id: str = field(default="", compare=False)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    #: What is at the output path: "absent", "written", "untouched"...
    output: str
    #: Names in the output folder other than the expected output (temporary files...).
    strays: list[str]


# -- bad files ------------------------------------------------------------------

def random_image(w: int = 40, h: int = 30, seed: int = 1) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def truncated(ws: Workspace, name: str, fmt: str) -> Path:
    path = ws.image(name, random_image(120, 90), format=fmt)
    data = path.read_bytes()
    return ws.file(name, data[: len(data) // 2])


def png_bytes(array: np.ndarray, bit_depth: int, color_type: int, size: tuple[int, int] | None = None) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB), or one that declares another ``size``.

    ``color_type``: 0 gray, 2 RGB, 4 gray + alpha, 6 RGBA. A declared size
    larger than the data makes a small file that promises a huge image.
    """
    h, w = array.shape[:2]
    width, height = size or (w, h)
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + array[y].astype(dtype).tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def damaged_tiff(ws: Workspace) -> Path:
    """An LZW TIFF with a broken code at the start of its strip: libtiff complains on fd 2 itself."""
    path = ws.image("damaged.tif", random_image(), compression="tiff_lzw")
    data = bytearray(path.read_bytes())
    data[8:11] = b"\xff\xfe\xfd"  # the strip follows the 8-byte header
    return ws.file("damaged.tif", bytes(data))


def bomb(ws: Workspace, width: int, height: int) -> Path:
    """A few hundred bytes declaring ``width`` x ``height`` pixels."""
    return ws.file(f"bomb-{width}x{height}.png", png_bytes(np.zeros((1, 1), np.uint8), 8, 0, size=(width, height)))


def rgba(ws: Workspace) -> Path:
    img = Image.new("RGBA", (40, 30), (255, 0, 0, 255))
    img.paste((0, 0, 0, 0), (0, 0, 20, 30))  # left half fully transparent: becomes white
    return ws.image("rgba.png", img)


def exif_rotated(ws: Workspace) -> Path:
    """Stored 40x30 (landscape) with EXIF orientation 6: shown 30x40 (portrait)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return ws.image("rotated.jpg", random_image(), exif=exif, quality=95)


def sixteen_bit_rgb(ws: Workspace) -> Path:
    values = np.random.default_rng(2).integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    return ws.file("rgb16.png", png_bytes(values, 16, 2))


def sixteen_bit_gray(ws: Workspace) -> Path:
    return ws.image("gray16.png", Image.fromarray(np.linspace(0, 65535, 1200, dtype=np.uint16).reshape(30, 40)))


def locked_folder(ws: Workspace) -> Path:
    """An output path in a folder that cannot be written, even by root (sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys/stylize-bad-inputs/result.png")
    folder = ws.root / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "result.png"


def existing_output(ws: Workspace) -> Path:
    ws.out.parent.mkdir(parents=True, exist_ok=True)
    random_image(8, 8, seed=9).save(ws.out)
    return ws.out


def earlier_snapshot(ws: Workspace) -> Path:
    ws.out.parent.mkdir(parents=True, exist_ok=True)
    random_image(8, 8, seed=9).save(ws.out.with_name("result-0001.png"))
    return ws.out


def net_file(ws: Workspace, name: str, text: str) -> str:
    return str(ws.file(name, text))


def cut_weights(ws: Workspace) -> str:
    data = Path(ws.weights).read_bytes()
    return str(ws.file("cut.caffemodel", data[: len(data) // 2]))


def other_network_weights(ws: Workspace) -> str:
    """Weights of a network with the same layer names but other shapes (8 filters instead of 4)."""
    from stylize.backends.pycaffe import import_caffe
    caffe = import_caffe()
    proto = ws.file("other.prototxt", PROTOTXT.replace("num_output: 4", "num_output: 8"))
    net = caffe.Net(str(proto), caffe.TEST)
    path = ws.root / "in" / "other.caffemodel"
    net.save(str(path))
    return str(path)


UNKNOWN_FIELD = PROTOTXT.replace("force_backward: true", "force_backward: true\nfancy_option: 3")
UNKNOWN_LAYER = PROTOTXT.replace('type: "TanH"', 'type: "Swish"')


# -- the cases ------------------------------------------------------------------

def _cases() -> list[Case]:
    C = Case
    return [
        # images
        C("content file missing", "image", lambda ws: ws.args(content=ws.root / "in" / "missing.jpg"),
          IMAGE, "no such file"),
        C("content is a directory", "image", lambda ws: ws.args(content=ws.root / "in"), IMAGE, "is a directory"),
        C("content is an empty file", "image", lambda ws: ws.args(content=ws.file("empty.jpg", b"")),
          IMAGE, "empty file"),
        C("text file named .jpg", "image", lambda ws: ws.args(content=ws.file("notes.jpg", "not a picture\n")),
          IMAGE, "not an image file"),
        C("truncated JPEG", "image", lambda ws: ws.args(content=truncated(ws, "cut.jpg", "JPEG")),
          IMAGE, "truncated"),
        C("truncated PNG", "image", lambda ws: ws.args(style=truncated(ws, "cut.png", "PNG")),
          IMAGE, "truncated"),
        C("damaged LZW TIFF (libtiff prints to stderr)", "image", lambda ws: ws.args(content=damaged_tiff(ws)),
          IMAGE, "damaged or truncated", isolate=True),
        C("decompression bomb, 100000x100000 declared", "image",
          lambda ws: ws.args(style=bomb(ws, 100_000, 100_000)), IMAGE, "decompression bomb"),
        C(f"bomb just over stylize's {MAX_PIXELS:,}-pixel limit", "image",
          lambda ws: ws.args(content=bomb(ws, 12_000, 12_000)), IMAGE, "12000x12000 is more than"),
        C("very thin image (2000x1)", "image",
          lambda ws: ws.args(content=ws.image("thin.png", Image.new("RGB", (2000, 1), "teal"))),
          IMAGE, "at least 16 px"),
        C("--init image truncated", "image",
          lambda ws: ws.args("--init", str(truncated(ws, "init.png", "PNG"))), IMAGE, "truncated"),
        # unusual images that must work
        C("CMYK JPEG", "image",
          lambda ws: ws.args(content=ws.image("cmyk.jpg", Image.new("CMYK", (40, 30), (0, 255, 255, 0)))),
          OK, output="written", size=(24, 18)),
        C("palette PNG", "image", lambda ws: ws.args(style=ws.image("p.png", random_image().convert("P"))),
          OK, output="written"),
        C("16-bit grayscale PNG", "image", lambda ws: ws.args(content=sixteen_bit_gray(ws)), OK, output="written"),
        C("16-bit RGB PNG", "image", lambda ws: ws.args(style=sixteen_bit_rgb(ws)), OK, output="written"),
        C("grayscale JPEG", "image", lambda ws: ws.args(content=ws.image("gray.jpg", random_image().convert("L"))),
          OK, output="written"),
        C("RGBA (alpha over white)", "image", lambda ws: ws.args(content=rgba(ws)), OK, output="written"),
        C("EXIF orientation 6", "image", lambda ws: ws.args(content=exif_rotated(ws)), OK, output="written",
          size=(18, 24)),
        C("1x1 image (scaled up)", "image",
          lambda ws: ws.args(style=ws.image("one.png", Image.new("RGB", (1, 1), "red"))), OK, output="written"),
        # output
        C("output folder not writable", "output", lambda ws: ws.args(output=locked_folder(ws)), IMAGE, "cannot"),
        C("output is a directory", "output", lambda ws: ws.args(output=ws.root / "in"), IMAGE, "is a directory"),
        C("output under a file", "output", lambda ws: ws.args(output=ws.content / "result.png"), IMAGE,
          "is a file, not a folder"),
        C("unsupported output extension", "output", lambda ws: ws.args(output=ws.out.with_suffix(".gif")),
          IMAGE, "unsupported output extension"),
        C("output exists, no --force", "output", lambda ws: ws.args(output=existing_output(ws)), IMAGE,
          "already exists; pass --force", output="untouched"),
        C("output exists, --force", "output", lambda ws: ws.args("--force", output=existing_output(ws)), OK,
          output="written"),
        C("earlier --save-every snapshot", "output",
          lambda ws: ws.args("--save-every", "1", output=earlier_snapshot(ws)), IMAGE, "pass --force"),
        C("output is the content image", "output", lambda ws: ws.args(output=ws.content), USAGE,
          "is also an input image", output="untouched"),
        # options
        C("--iterations 0", "options", lambda ws: ws.args("-n", "0"), USAGE, "iterations must be at least 1"),
        C("--iterations -5", "options", lambda ws: ws.args("-n", "-5"), USAGE, "iterations must be at least 1"),
        C("--length 0", "options", lambda ws: ws.args("-l", "0"), USAGE, "length must be at least 1"),
        C("--length 8 (image too small)", "options", lambda ws: ws.args("-l", "8"), IMAGE, "at least 16 px"),
        C("--ratio 0", "options", lambda ws: ws.args("-r", "0"), USAGE, "ratio must be a positive number"),
        C("--ratio -1e4", "options", lambda ws: ws.args("-r", "-1e4"), USAGE, "ratio must be a positive number"),
        C("--ratio nan", "options", lambda ws: ws.args("-r", "nan"), USAGE, "ratio must be a positive number"),
        C("--iterations ten", "options", lambda ws: ws.args("-n", "ten"), USAGE, "is not a valid integer"),
        C("--length 1.5", "options", lambda ws: ws.args("-l", "1.5"), USAGE, "is not a valid integer"),
        C("--ratio lots", "options", lambda ws: ws.args("-r", "lots"), USAGE, "is not a valid float"),
        C("--scales 0", "options", lambda ws: ws.args("--scales", "0"), USAGE, "scales must be at least 1"),
        C("--scales 4 (coarsest level too small)", "options", lambda ws: ws.args("--scales", "4"), IMAGE,
          "coarsest scale"),
        C("--seed -1", "options", lambda ws: ws.args("--init", "noise", "--seed", "-1"), USAGE, "--seed"),
        C("--threads 0", "options", lambda ws: ws.args("--threads", "0"), USAGE, "--threads"),
        C("--set without =", "options", lambda ws: ws.args("--set", "tv.weight"), USAGE, "PLUGIN.KEY=VALUE"),
        C("--set tv.weight=nan", "options", lambda ws: ws.args("--loss", "tv", "--set", "tv.weight=nan"), USAGE,
          "not a finite number"),
        C("unknown option", "options", lambda ws: ws.args("--colour", "red"), USAGE, "No such option"),
        C("missing -s", "options", lambda ws: [a for a in ws.args() if a not in ("-s", str(ws.style))], USAGE,
          "Missing option"),
        C("unknown backend", "options", lambda ws: ws.args(model=["-b", "caffe-vgg"]), PLUGIN,
          "unknown backend 'caffe-vgg'"),
        C("unknown loss", "options", lambda ws: ws.args("--loss", "gramm"), PLUGIN, "did you mean 'gram'?"),
        C("unknown optimizer", "options", lambda ws: ws.args("--optimizer", "bfgs"), PLUGIN, "unknown optimizer"),
        C("layer the network lacks", "options", lambda ws: ws.args("--style-layers", "conv1,fc7"), USAGE,
          "fc7 not in this network"),
        C("--gpu 0 where no GPU can be used", "options", lambda ws: ws.args("--gpu", "0"), USAGE, refusal_words()),
        C("--gpu -3", "options", lambda ws: ws.args("--gpu", "-3"), USAGE, "give -1 for the CPU"),
        C("--model-dir with --prototxt and --weights", "options",
          lambda ws: ws.args("--model-dir", str(ws.root / "in")), USAGE, "--model-dir is not used"),
        # models
        C("weights file missing", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", ws.prototxt, "--weights", "nowhere.caffemodel"]),
          MODEL, "weights file not found"),
        C("built-in weights not installed", "models", lambda ws: ws.args(model=["-b", "caffe-vgg19"]), MODEL,
          "stylize models fetch vgg19", env=lambda ws: {"STYLIZE_HOME": str(ws.root / "empty-home")}),
        C("prototxt missing", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", "nowhere.prototxt", "--weights", ws.weights]),
          MODEL, "network definition file not found"),
        C("--model-dir missing", "models", lambda ws: ws.args(model=["-b", "caffe", "--model-dir", "nowhere"]),
          MODEL, "model folder not found"),
        C("truncated caffemodel", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", ws.prototxt, "--weights", cut_weights(ws)]),
          MODEL, "not a readable Caffe model", isolate=True),
        C("garbage caffemodel", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", ws.prototxt,
                                    "--weights", str(ws.file("junk.caffemodel", b"\x08\x96\x01junk" * 50))]),
          MODEL, "not a readable Caffe model", isolate=True),
        C("caffemodel of another network", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", ws.prototxt,
                                    "--weights", other_network_weights(ws)]),
          MODEL, "another network", isolate=True),
        C("prototxt with an unknown field", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", net_file(ws, "field.prototxt", UNKNOWN_FIELD),
                                    "--weights", ws.weights]),
          MODEL, "not a valid Caffe network definition", isolate=True),
        C("prototxt with an unknown layer type", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", net_file(ws, "layer.prototxt", UNKNOWN_LAYER),
                                    "--weights", ws.weights]),
          MODEL, "Swish are not in this Caffe build", isolate=True),
        C("prototxt that is not text", "models",
          lambda ws: ws.args(model=["-b", "caffe", "--prototxt", str(ws.content), "--weights", ws.weights]),
          MODEL, "not a valid Caffe network definition", isolate=True),
        # numerics
        C("objective overflows (--ratio 1e308)", "numerics", lambda ws: ws.args("-r", "1e308"), NUMERICAL,
          "kept the last good image", output="written"),
    ]


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


CASES = [Case(**{**c.__dict__, "id": _id(c.name)}) for c in _cases()]


# -- running a case -------------------------------------------------------------

CHILD = "import sys; from stylize.cli.main import cli; cli(sys.argv[1:], prog_name='stylize')"


def run_case(case: Case, ws: Workspace) -> Outcome:
    """Build the case's files in ``ws``, run the command, and look at the output folder."""
    args = case.args(ws)
    output = Path(args[args.index("-o") + 1])
    before = output.read_bytes() if output.is_file() else None
    env = case.env(ws) if case.env else {}
    if case.isolate:
        proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=120)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        result = CliRunner().invoke(_cli(), args, prog_name="stylize", env=env)
        code, stdout, stderr = result.exit_code, result.stdout, result.stderr
    return Outcome(code, stdout, stderr, _state(output, before), _strays(output, ws))


def _cli():
    from stylize.cli.main import cli
    return cli


def _state(output: Path, before: bytes | None) -> str:
    if not output.is_file():
        return "absent"
    if before is not None and output.read_bytes() == before:
        return "untouched"
    return "written"


def _strays(output: Path, ws: Workspace) -> list[str]:
    """Files no run should leave behind: hidden or temporary files beside the output, and
    anything in the workspace's (initially missing) output folder but the output itself."""
    found = []
    for folder in {output.parent, ws.out.parent}:
        if folder.is_dir() and str(folder).startswith(str(ws.root)):
            for name in os.listdir(folder):
                unexpected = folder == ws.out.parent and name not in (output.name, "result-0001.png")
                if name.startswith(".") or name.endswith(".tmp") or unexpected:
                    found.append(str((folder / name).relative_to(ws.root)))
    return sorted(found)
