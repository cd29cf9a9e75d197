"""StartContract: what every ``stylize.starts`` plugin must pass (a picture of the shape asked, seeds, options)."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from stylize.core.contracts import Images, StartImage
from .checks import UNKNOWN_OPTION, check_declared_options


class StartContract:
    """Tests for a ``stylize.starts`` plugin (``--init NAME``): a picture of the asked shape, in [0, 1].

    Set ``start_class``; optionally ``options`` (constructor keywords used by
    every test) and ``random = True`` for a start that draws from the seed
    (then equal seeds must give equal pictures, and others another one).
    ``sample_images`` makes the run's images: a content and two styles of
    other sizes, blended 3:1, as the core hands them over.
    """

    start_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    random: ClassVar[bool] = False

    def make_start(self, **options) -> StartImage:
        if self.start_class is None:
            raise NotImplementedError("set start_class (or override make_start) in your Test class")
        return self.start_class(**{**self.options, **options})

    def sample_images(self, rng: np.random.Generator) -> Images:
        """A smooth content (48x64) and two styles (40x40, 72x50) with weights 0.75, 0.25."""
        def picture(h, w):
            y, x = np.mgrid[0:h, 0:w] / max(h, w)
            base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=-1)
            return np.clip(0.5 + 0.4 * base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
        return Images(picture(48, 64), [picture(40, 40), picture(72, 50)], [0.75, 0.25])

    def _image(self, shape=(32, 40), seed: int | None = 0, images: Images | None = None, **options):
        images = images if images is not None else self.sample_images(np.random.default_rng(0))
        return self.make_start(**options).image(images, shape, seed)

    def test_implements_the_start_contract(self):
        assert isinstance(self.make_start(), StartImage)

    @pytest.mark.parametrize("shape", [(32, 40), (48, 64), (70, 21)])
    def test_returns_float_rgb_of_the_shape_asked_in_0_1(self, shape):
        image = self._image(shape)
        assert isinstance(image, np.ndarray) and image.shape == (*shape, 3), \
            f"image({shape}) returned shape {getattr(image, 'shape', None)}, expected {(*shape, 3)}"
        assert np.issubdtype(image.dtype, np.floating), f"expected a float image, got {image.dtype}"
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0, \
            f"values must be finite and in [0, 1], got {image.min()}..{image.max()}"

    def test_is_a_picture_not_a_constant(self):
        image = self._image()
        assert float(image.std()) > 1e-3, "the start is one flat colour"

    def test_same_seed_same_picture(self):
        np.testing.assert_array_equal(self._image(seed=3), self._image(seed=3))
        if self.random:
            assert not np.array_equal(self._image(seed=3), self._image(seed=4)), "the seed changes nothing"

    def test_does_not_modify_its_inputs(self):
        images = self.sample_images(np.random.default_rng(1))
        before = [images.content.copy(), *(s.copy() for s in images.styles)]
        self._image(images=images)
        for was, now in zip(before, [images.content, *images.styles]):
            np.testing.assert_array_equal(was, now)

    def test_first_level_is_within_the_levels(self):
        for levels in (1, 2, 3, 5):
            first = self.make_start().first_level(levels)
            assert isinstance(first, int) and (0 <= first < levels or -levels <= first < 0), \
                f"first_level({levels}) = {first!r}: not a level of {levels}"

    def test_accepts_and_ignores_unknown_options(self):
        assert self._image(**{UNKNOWN_OPTION: 1}).shape == (32, 40, 3)

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): unique, each default valid and equal to the constructor's."""
        check_declared_options(self.start_class or type(self.make_start()))
