"""16 bits per channel on request (--bit-depth 16): PNG and TIFF written and read back at full precision.

Real encoders and decoders throughout (OpenCV, tifffile, Pillow), and a real
tiny-network run through the command line.
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.core.run import checkpoint
from stylize.core.io import png_text
from stylize.core.errors import ImageError, UsageError
from stylize.core.io.image_formats import quantize
from stylize.core.io.images import load_image, save_image
from stylize.core.request.settings import Settings

METADATA = {"Software": "stylize", "stylize:settings": "Settings(bit_depth=16)",
            "stylize:content": "photo ü.jpg", "stylize:style": "絵.png"}  # Latin-1 (tEXt) and not (iTXt)


def gradient(h=8, w=2048) -> np.ndarray:
    """A smooth ramp with far more levels than 8 bits hold."""
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)
    return np.stack([np.tile(ramp, (h, 1)), np.tile(ramp[::-1], (h, 1)), np.full((h, w), 0.3, np.float32)], -1)


def stored(path) -> np.ndarray:
    """The samples as the file holds them (OpenCV, BGR turned to RGB): the dtype says the depth."""
    pixels = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    return pixels[..., ::-1]


def test_quantize_rounds_and_clips_to_16_bits():
    values = np.array([-1.0, 0.0, 0.4 / 65535, 0.6 / 65535, 0.5, 1.0, 2.0, np.float32(12345 / 65535)], np.float32)
    assert quantize(values, 16).dtype == np.uint16
    np.testing.assert_array_equal(quantize(values, 16), [0, 0, 0, 1, 32768, 65535, 65535, 12345])


@pytest.mark.parametrize("name", ["out.png", "out.tif", "out.TIFF"])
def test_16_bit_round_trip_is_within_half_a_level(tmp_path, name):
    image = np.random.default_rng(1).random((17, 23, 3), dtype=np.float32)
    path = save_image(image, tmp_path / name, bit_depth=16)
    assert stored(path).dtype == np.uint16
    loaded = load_image(path)
    assert loaded.dtype == np.float32 and loaded.shape == image.shape
    assert np.abs(loaded - image).max() <= 0.5 / 65535 + 1e-7
    # Written again from what was read, the file holds the same samples: nothing drifts through a resume.
    np.testing.assert_array_equal(stored(save_image(loaded, tmp_path / f"again{path.suffix}", bit_depth=16)),
                                  stored(path))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bits_keep_levels_that_8_bits_lose(tmp_path, suffix):
    image = gradient()
    deep = load_image(save_image(image, tmp_path / f"deep{suffix}", bit_depth=16))
    flat = load_image(save_image(image, tmp_path / f"flat{suffix}", bit_depth=8))
    assert stored(tmp_path / f"flat{suffix}").dtype == np.uint8
    assert len(np.unique(flat[0, :, 0])) <= 256
    assert len(np.unique(deep[0, :, 0])) == 2048  # every step of the ramp kept
    assert np.abs(deep - image).max() < np.abs(flat - image).max() / 100


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_tiff_is_exact_at_its_depth_and_carries_its_metadata_as_json(tmp_path, bit_depth):
    top = (1 << bit_depth) - 1
    image = np.random.default_rng(2).integers(0, top + 1, (9, 11, 3)).astype(np.float32) / np.float32(top)
    path = save_image(image, tmp_path / "out.tif", metadata=METADATA, bit_depth=bit_depth)
    assert stored(path).dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    np.testing.assert_array_equal(load_image(path), image)
    with Image.open(path) as img:
        assert img.format == "TIFF" and img.mode == "RGB"
        assert json.loads(img.tag_v2[270]) == METADATA


def test_16_bit_png_carries_text_that_pillow_reads(tmp_path):
    path = save_image(gradient(4, 40), tmp_path / "out.png", metadata=METADATA, bit_depth=16)
    with Image.open(path) as img:
        img.verify()  # every chunk's CRC
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (40, 4)
        assert img.text == METADATA
    data = path.read_bytes()
    assert data[24] == 16 and data[25] == 2  # IHDR: 16 bits per sample, RGB
    assert data.index(b"tEXt") < data.index(b"IDAT") and data.index(b"iTXt") < data.index(b"IDAT")


def test_png_text_refuses_what_png_does_not_allow():
    png = png_text.SIGNATURE + png_text.chunk(b"IHDR", bytes(13))
    with pytest.raises(ValueError, match="1 to 79"):
        png_text.with_text(png, {"x" * 80: "long key"})
    with pytest.raises(ValueError, match="IHDR"):
        png_text.with_text(b"GIF89a", {"a": "b"})


def test_the_gallery_reads_a_16_bit_result(tmp_path):
    from stylize.core.run.job import metadata
    from stylize.serve.gallery import Gallery
    from stylize.serve.uploads import UploadStore
    from stylize.serve.work import WorkFolder

    work = WorkFolder(tmp_path / "work")
    settings = Settings(iterations=7, length=40, bit_depth=16)
    save_image(gradient(4, 40), work.results / "0123456789abcdef.png", bit_depth=16,
               metadata=metadata(settings, "content.png", ["style.png"]))
    (item,) = Gallery(work, UploadStore(work, 1 << 20)).items()
    assert (item["id"], item["width"], item["height"]) == ("0123456789abcdef", 40, 4)
    assert item["settings"]["bit_depth"] == 16 and item["settings"]["iterations"] == 7
    assert item["content"]["name"] == "content.png" and item["styles"][0]["name"] == "style.png"


def test_16_bit_rgba_is_composited_over_white_at_full_precision(tmp_path):
    rgba = np.array([[[65535, 0, 0, 65535], [0, 0, 0, 0], [1000, 2000, 3000, 32768]]], np.uint16)
    ok, encoded = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])
    (tmp_path / "rgba16.png").write_bytes(encoded.tobytes())
    image = load_image(tmp_path / "rgba16.png")
    alpha = 32768 / 65535
    np.testing.assert_allclose(image[0], [[1, 0, 0], [1, 1, 1], np.array([1000, 2000, 3000]) / 65535 * alpha
                                          + (1 - alpha)], atol=1e-6)


def test_16_bit_png_is_turned_by_its_exif_orientation(tmp_path):
    """As Pillow turns an 8-bit image with the same EXIF block (orientation 6: 90 degrees clockwise)."""
    pixels = np.random.default_rng(3).integers(0, 256, (3, 5, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "eight.png", exif=exif.tobytes())
    ok, encoded = cv2.imencode(".png", pixels[..., ::-1].astype(np.uint16) * 257)
    png = encoded.tobytes()
    (tmp_path / "deep.png").write_bytes(png[:33] + png_text.chunk(b"eXIf", exif.tobytes()[6:]) + png[33:])
    deep, eight = load_image(tmp_path / "deep.png"), load_image(tmp_path / "eight.png")
    assert deep.shape == (5, 3, 3)
    np.testing.assert_allclose(deep, eight, atol=1e-6)


def test_jpeg_cannot_take_16_bits_and_nothing_is_written(tmp_path):
    with pytest.raises(UsageError, match="JPEG holds at most 8 bits per channel.*.png, .tif, .tiff"):
        save_image(gradient(), tmp_path / "sub" / "out.jpg", bit_depth=16)
    assert os.listdir(tmp_path) == []
    with pytest.raises(UsageError, match="bit-depth 12: give 8 or 16"):
        Settings(bit_depth=12).validate()


def test_the_job_refuses_jpeg_at_16_bits_before_reading_any_image(tmp_path):
    from stylize import Job
    with pytest.raises(UsageError, match="out.jpg: JPEG holds at most 8 bits"):
        Job(tmp_path / "no-such-content.png", tmp_path / "no-such-style.png", output=tmp_path / "out.jpg",
            bit_depth=16)


def test_the_bit_depth_is_not_part_of_a_checkpoints_fingerprint():
    """Resuming may write the result at another depth: it changes the file, not the image."""
    eight, sixteen = (checkpoint.fingerprint(Settings(bit_depth=d), {}) for d in (8, 16))
    assert eight == sixteen


def test_a_failed_16_bit_write_leaves_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "kept.png").write_bytes(b"the previous image")

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    for name in ("kept.png", "new.png", "new.tif"):
        with pytest.raises(ImageError, match="No space left on device"):
            save_image(gradient(), folder / name, bit_depth=16)
    assert os.listdir(folder) == ["kept.png"]
    assert (folder / "kept.png").read_bytes() == b"the previous image"


# -- the command line --------------------------------------------------------------------------

def invoke(*args: str):
    from stylize.cli.main import cli
    return CliRunner().invoke(cli, list(args), prog_name="stylize")


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(tmp_path / f"{name}.jpg")
    return tmp_path


def tiny_args(tiny_net, folder, output, *extra):
    prototxt, weights = tiny_net
    return ["run", "-c", str(folder / "content.jpg"), "-s", str(folder / "style.jpg"), "-o", str(output),
            "-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-l", "32", "-q", *extra]


def test_cli_refuses_jpeg_at_16_bits_in_one_line(tiny_net, inputs):
    result = invoke(*tiny_args(tiny_net, inputs, inputs / "out" / "result.jpg", "--bit-depth", "16"))
    assert result.exit_code == UsageError.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.startswith("stylize: error: ") and result.stderr.count("\n") == 1
    assert "JPEG holds at most 8 bits per channel" in result.stderr and "--bit-depth 16" in result.stderr
    assert not (inputs / "out").exists()


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_cli_run_writes_16_bit_output_and_snapshots(tiny_net, inputs, suffix):
    output = inputs / "out" / f"result{suffix}"
    result = invoke(*tiny_args(tiny_net, inputs, output, "-n", "2", "--scales", "1", "--save-every", "1",
                               "--init", "noise", "--seed", "1", "--bit-depth", "16"))
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(output.parent)) == [f"result-0001{suffix}", f"result-0002{suffix}", f"result{suffix}"]
    for path in output.parent.iterdir():
        samples = stored(path)
        assert samples.dtype == np.uint16 and samples.shape == (24, 32, 3)
        # Not an 8-bit image scaled up (every sample a multiple of 257): the optimizer's floats reached the file.
        assert np.count_nonzero(samples % 257) > samples.size // 2
    with Image.open(output) as img:
        text = img.text if suffix == ".png" else json.loads(img.tag_v2[270])
    assert json.loads(text["stylize:settings"])["bit_depth"] == 16 and text["Software"] == "stylize"
    np.testing.assert_allclose(load_image(output), stored(output) / 65535.0, atol=1e-6)
