"""stylize.core.io.images: reading any image as RGB floats, scaling, atomic writing."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from stylize.core.errors import ImageError
from stylize.core.io.images import (FORMATS, check_output_path, fit_long_side, load_image, resize,
                                 save_image, to_uint8)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def random_rgb(h=30, w=40, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_rgb(h=30, w=40) -> np.ndarray:
    """A gentle gradient: JPEG reproduces it closely."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([x / (w - 1), y / (h - 1), 0.5 + 0 * x], axis=-1).astype(np.float32)


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# -- load_image ---------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_load_image_is_hxwx3_float32_in_unit_range(tmp_path, suffix):
    pixels = random_rgb()
    path = tmp_path / f"image{suffix}"
    Image.fromarray(pixels).save(path)
    image = load_image(path)
    assert image.shape == (30, 40, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    if suffix in (".png", ".bmp", ".tif"):  # lossless: exact values
        np.testing.assert_array_equal(image, pixels.astype(np.float32) / 255.0)


def test_load_image_accepts_str_paths(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(random_rgb()).save(path)
    np.testing.assert_array_equal(load_image(str(path)), load_image(path))


def test_rgba_is_composited_onto_white(tmp_path):
    """Documented rule: transparent pixels become white, i.e. alpha-over-white."""
    img = Image.new("RGBA", (4, 1))
    img.putpixel((0, 0), (255, 0, 0, 255))    # opaque red stays red
    img.putpixel((1, 0), (0, 0, 0, 0))        # fully transparent black becomes white
    img.putpixel((2, 0), (255, 0, 0, 128))    # half red over white
    img.putpixel((3, 0), (0, 0, 255, 64))     # quarter blue over white
    img.save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    assert image.shape == (1, 4, 3)

    def over_white(rgb, alpha):
        a = alpha / 255.0
        return (np.array(rgb) * a + 255.0 * (1 - a)) / 255.0

    expected = [over_white(RED, 255), over_white((0, 0, 0), 0),
                over_white(RED, 128), over_white(BLUE, 64)]
    np.testing.assert_allclose(image[0], np.array(expected), atol=1.5 / 255)
    np.testing.assert_array_equal(image[0, 1], [1.0, 1.0, 1.0])


def test_gray_with_alpha_is_composited_onto_white(tmp_path):
    Image.new("LA", (2, 2), (0, 64)).save(tmp_path / "la.png")
    image = load_image(tmp_path / "la.png")
    assert image.shape == (2, 2, 3)
    np.testing.assert_allclose(image, 1 - 64 / 255, atol=1.5 / 255)


def test_grayscale_becomes_rgb(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (30, 40), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    image = load_image(tmp_path / "gray.png")
    assert image.shape == (30, 40, 3) and image.dtype == np.float32
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray / np.float32(255))


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    image = load_image(tmp_path / "gray16.png")
    assert image.shape == (1, 4, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[0, :, 0], values[0] / 65535.0, atol=1e-6)


def test_palette_image_becomes_rgb(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    for x in range(3):
        img.putpixel((x, 0), x)
    img.save(tmp_path / "palette.png")
    assert Image.open(tmp_path / "palette.png").mode == "P"
    image = load_image(tmp_path / "palette.png")
    np.testing.assert_array_equal(image[0], np.eye(3, dtype=np.float32))


def test_palette_transparency_becomes_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "ptrans.png", transparency=1)  # index 1 (blue) is transparent
    image = load_image(tmp_path / "ptrans.png")
    np.testing.assert_array_equal(image[0], [[1, 0, 0], [1, 1, 1]])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red in CMYK
    image = load_image(tmp_path / "cmyk.jpg")
    assert image.shape == (6, 8, 3)
    assert image[..., 0].mean() > 0.8 and image[..., 1:].mean() < 0.2


def test_exif_orientation_is_honoured(tmp_path):
    """Orientation 6: stored landscape, shown rotated 90 degrees clockwise (portrait)."""
    img = Image.new("RGB", (40, 30), BLUE)
    img.paste(RED, (0, 0, 12, 12))  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    assert Image.open(path).getexif()[0x0112] == 6

    image = load_image(path)
    assert image.shape == (40, 30, 3)  # portrait, not the stored 30x40
    # Rotating clockwise moves the stored top-left corner to the top right.
    top_right = image[2:10, -10:-2]
    top_left = image[2:10, 2:10]
    assert top_right[..., 0].mean() > 0.8 and top_right[..., 2].mean() < 0.2
    assert top_left[..., 2].mean() > 0.8 and top_left[..., 0].mean() < 0.2


def test_missing_file_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_directory_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_text_file_is_an_image_error(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    with pytest.raises(ImageError, match="not an image file"):
        load_image(tmp_path / "notes.jpg")


def test_truncated_file_is_an_image_error(tmp_path):
    Image.fromarray(random_rgb(300, 400)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(tmp_path / "cut.png")


# -- fit_long_side and resize -------------------------------------------------

@pytest.mark.parametrize("shape, length, expected", [
    ((30, 40), 20, (15, 20)),
    ((40, 30), 20, (20, 15)),
    ((30, 40), 80, (60, 80)),      # upscaling too
    ((100, 100), 7, (7, 7)),
    ((1000, 1), 10, (10, 1)),      # never collapses to zero pixels
    ((1, 1000), 10, (1, 10)),
])
def test_fit_long_side(shape, length, expected):
    assert fit_long_side(shape, length) == expected


@pytest.mark.parametrize("shape", [(30, 40), (480, 640), (1080, 1920), (333, 777), (777, 333)])
@pytest.mark.parametrize("length", [32, 100, 512])
def test_fit_long_side_keeps_aspect(shape, length):
    h, w = fit_long_side(shape, length)
    assert max(h, w) == length
    # Within one pixel of rounding of the exact aspect.
    if shape[0] >= shape[1]:
        assert abs(w - shape[1] * length / shape[0]) <= 0.5 + 1e-9
    else:
        assert abs(h - shape[0] * length / shape[1]) <= 0.5 + 1e-9


@pytest.mark.parametrize("size", [(15, 20), (60, 80), (7, 13), (30, 40)])
def test_resize_gives_requested_size(size):
    image = random_rgb().astype(np.float32) / 255.0
    out = resize(image, size)
    assert out.shape == (*size, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_to_same_size_is_identity():
    image = random_rgb().astype(np.float32) / 255.0
    np.testing.assert_array_equal(resize(image, (30, 40)), image)


def test_resize_keeps_colours():
    image = np.empty((30, 40, 3), np.float32)
    image[...] = (0.2, 0.5, 0.9)
    np.testing.assert_allclose(resize(image, (12, 16)), np.broadcast_to((0.2, 0.5, 0.9), (12, 16, 3)),
                               atol=1e-4)
    # Downscaling a smooth image approximates subsampling it.
    smooth = smooth_rgb(60, 80)
    np.testing.assert_allclose(resize(smooth, (30, 40)), smooth[::2, ::2], atol=0.03)


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(to_uint8(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])),
                                  [0, 0, 128, 255, 255])


# -- check_output_path and save_image ----------------------------------------

@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.jpeg", "OUT.PNG", "x.Jpg", "out.tif", "x.TIFF"])
def test_check_output_path_accepts_known_extensions(tmp_path, name):
    assert check_output_path(tmp_path / name) == tmp_path / name


@pytest.mark.parametrize("name", ["out.gif", "out.webp", "out", "out.png.txt"])
def test_check_output_path_rejects_other_extensions(tmp_path, name):
    with pytest.raises(ImageError, match="unsupported output extension") as info:
        check_output_path(tmp_path / name)
    for suffix in FORMATS:
        assert suffix in str(info.value)


@pytest.mark.parametrize("name", ["folder", "folder.png"])
def test_check_output_path_rejects_directories(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        check_output_path(tmp_path / name)


def test_png_round_trip_is_exact(tmp_path):
    image = random_rgb().astype(np.float32) / 255.0
    path = save_image(image, tmp_path / "out.png")
    assert path == tmp_path / "out.png"
    assert Image.open(path).format == "PNG"
    np.testing.assert_array_equal(load_image(path), image)


@pytest.mark.parametrize("name", ["out.jpg", "out.jpeg", "OUT.JPG"])
def test_jpeg_round_trip_within_tolerance(tmp_path, name):
    image = smooth_rgb()
    path = save_image(image, tmp_path / name)
    with Image.open(path) as img:
        assert img.format == "JPEG"
    loaded = load_image(path)
    assert loaded.shape == image.shape
    assert np.abs(loaded - image).mean() < 0.02
    assert np.abs(loaded - image).max() < 0.1


def test_save_image_clips_out_of_range_values(tmp_path):
    image = np.array([[[-0.5, 0.5, 1.5]]], dtype=np.float32)
    saved = load_image(save_image(image, tmp_path / "clip.png"))
    np.testing.assert_allclose(saved, [[[0.0, 128 / 255, 1.0]]])


def test_png_carries_text_metadata(tmp_path):
    metadata = {"Software": "stylize", "stylize:settings": "Settings(ratio=10000.0)",
                "stylize:content": "photo ü.jpg"}
    path = save_image(smooth_rgb(), tmp_path / "meta.png", metadata=metadata)
    with Image.open(path) as img:
        img.load()
        assert {k: img.text[k] for k in metadata} == metadata


def test_jpeg_ignores_metadata_without_failing(tmp_path):
    path = save_image(smooth_rgb(), tmp_path / "meta.jpg", metadata={"stylize:settings": "x"})
    assert load_image(path).shape == (30, 40, 3)


def test_save_image_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c" / "out.png"
    assert save_image(smooth_rgb(), target) == target
    assert target.is_file()
    assert listing(target.parent) == ["out.png"]


def test_save_image_replaces_existing_file_without_leftovers(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")
    save_image(smooth_rgb(), target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert listing(tmp_path) == ["out.png"]


def test_saved_file_is_not_private(tmp_path):
    """The temporary file is created 0600; the image must get normal permissions."""
    old = os.umask(0o022)
    try:
        path = save_image(smooth_rgb(), tmp_path / "perm.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _failing_save(exc):
    def save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\npartial image data")  # some bytes first, then fail
        fp.flush()
        raise exc
    return save


@pytest.mark.parametrize("exc, error", [
    (OSError(28, "No space left on device"), ImageError),
    (RuntimeError("encoder crashed"), RuntimeError),
    (KeyboardInterrupt(), KeyboardInterrupt),
])
@pytest.mark.parametrize("existing", [True, False])
def test_save_image_is_atomic_when_writing_fails(tmp_path, monkeypatch, exc, error, existing):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "image.png"
    if existing:
        target.write_bytes(b"the previous image")
    monkeypatch.setattr(Image.Image, "save", _failing_save(exc))

    with pytest.raises(error) as info:
        save_image(smooth_rgb(), target)

    if error is ImageError:
        assert "No space left on device" in str(info.value)
        assert str(target) in str(info.value)
    if existing:
        assert target.read_bytes() == b"the previous image"
        assert listing(folder) == ["image.png"]
    else:
        assert not target.exists()
        assert listing(folder) == []  # no temporary file left behind


def test_save_image_rejects_bad_targets_before_writing(tmp_path):
    with pytest.raises(ImageError, match="unsupported output extension"):
        save_image(smooth_rgb(), tmp_path / "sub" / "out.gif")
    assert not (tmp_path / "sub").exists()
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        save_image(smooth_rgb(), tmp_path / "dir.png")
    assert listing(tmp_path / "dir.png") == []


# -- untrusted files (issue 7) --------------------------------------------------

def _png_declaring(tmp_path, width: int, height: int):
    from .bad_input_cases import png_bytes
    path = tmp_path / f"{width}x{height}.png"
    path.write_bytes(png_bytes(np.zeros((1, 1), np.uint8), 8, 0, size=(width, height)))
    return path


def test_empty_file_is_an_image_error(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.png")


def test_a_device_is_not_read(tmp_path):
    """/dev/zero never ends: it must be refused, not read."""
    with pytest.raises(ImageError, match="not a regular file"):
        load_image("/dev/zero")


@pytest.mark.parametrize("size", [(12_000, 12_000), (100_000, 100_000), (1 << 20, 129)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, size):
    """Over MAX_PIXELS, with Pillow's warning silenced (below its own hard limit) or its error replaced."""
    import warnings

    from stylize.core.io.images import MAX_PIXELS
    assert size[0] * size[1] > MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        with pytest.raises(ImageError, match="decompression bombs") as info:
            load_image(_png_declaring(tmp_path, *size))
    assert "\n" not in str(info.value) and f"{MAX_PIXELS:,}" in str(info.value)


def test_large_but_allowed_size_is_only_limited_by_its_data(tmp_path):
    """Under MAX_PIXELS the declared size is accepted; missing data is then a truncation error."""
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(_png_declaring(tmp_path, 4000, 3000))


def test_corrupt_exif_keeps_the_picture(tmp_path):
    path = tmp_path / "exif.jpg"
    Image.fromarray(random_rgb()).save(path, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    image = load_image(path)
    assert image.shape == (30, 40, 3)


def test_float_images_with_nan_and_inf_become_finite(tmp_path):
    values = np.array([[np.nan, np.inf], [-np.inf, 0.5]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    image = load_image(tmp_path / "f.tif")
    np.testing.assert_array_equal(image[..., 0], [[0, 1], [0, 0.5]])


def test_32_bit_integer_images_are_scaled_to_their_range(tmp_path):
    Image.fromarray(np.array([[0, 1 << 20]], np.int32)).save(tmp_path / "i32.tif")
    image = load_image(tmp_path / "i32.tif")
    np.testing.assert_allclose(image[0, :, 0], [0, 1])


def test_lab_image_is_converted_by_colour(tmp_path):
    """Pillow's plain convert would read L, a, b as R, G, B."""
    from PIL import ImageCms
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    ImageCms.applyTransform(Image.new("RGB", (3, 2), RED), to_lab).save(tmp_path / "lab.tif")
    assert Image.open(tmp_path / "lab.tif").mode == "LAB"
    image = load_image(tmp_path / "lab.tif")
    np.testing.assert_allclose(image[0, 0], [1, 0, 0], atol=0.05)


def test_16_bit_rgb_png(tmp_path):
    from .bad_input_cases import png_bytes
    values = np.array([[[65535, 0, 0], [0, 32768, 65535]]], np.uint16)
    (tmp_path / "rgb16.png").write_bytes(png_bytes(values, 16, 2))
    image = load_image(tmp_path / "rgb16.png")
    np.testing.assert_allclose(image[0], values[0] / 65535.0, atol=1e-6)  # all 16 bits, not Pillow's high byte


# -- check_new_output and check_working_size --------------------------------------

def test_existing_output_needs_force(tmp_path):
    from stylize.core.io.images import check_new_output
    (tmp_path / "out.png").write_bytes(b"earlier")
    with pytest.raises(ImageError, match="already exists; pass --force"):
        check_new_output(tmp_path / "out.png")
    assert check_new_output(tmp_path / "out.png", force=True) == tmp_path / "out.png"
    assert (tmp_path / "out.png").read_bytes() == b"earlier"
    assert listing(tmp_path) == ["out.png"]  # the probe file is gone


def test_new_output_folders_are_not_created_by_the_check(tmp_path):
    from stylize.core.io.images import check_new_output
    check_new_output(tmp_path / "a" / "b" / "out.png")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("where", ["file", "sysfs"])
def test_unwritable_output_folder(tmp_path, where):
    from stylize.core.io.images import check_new_output
    if where == "file":
        (tmp_path / "notes.txt").write_text("x")
        target, fragment = tmp_path / "notes.txt" / "sub" / "out.png", "is a file, not a folder"
    else:  # read-only even for root
        target, fragment = "/sys/stylize-test/out.png", "cannot write in /sys"
    with pytest.raises(ImageError, match=fragment):
        check_new_output(target)


@pytest.mark.parametrize("shape, coarsest, error", [
    ((24, 18), 1.0, None),
    ((512, 512), 0.25, None),
    ((16, 512), 1.0, None),
    ((64, 512), 0.25, None),  # exactly 16 px at the coarsest level
    ((1, 512), 1.0, "512x1 px at this --length"),
    ((15, 24), 1.0, "24x15 px at this --length"),
    ((60, 512), 0.25, "128x15 px at the coarsest scale"),
])
def test_check_working_size(shape, coarsest, error):
    from stylize.core.io.images import MIN_SIDE, check_working_size
    assert MIN_SIDE == 16
    if error is None:
        check_working_size((*shape, 3), "content image c.png", coarsest)
    else:
        with pytest.raises(ImageError, match=error):
            check_working_size((*shape, 3), "content image c.png", coarsest)
