"""Shared fixtures: real photos, tiny Caffe networks written with pycaffe, real weights."""
from __future__ import annotations

import numpy as np
import pytest

from stylize.backends import zoo
from stylize.core.images import fit_long_side, load_image, resize

from .tinynet import write_tiny_net


@pytest.fixture(scope="session")
def vgg19_weights() -> str:
    """The real VGG19 weights, installed by the README's setup (never downloaded here)."""
    path = zoo.weights_path("vgg19")
    if not path.is_file():
        pytest.fail(f"{path} missing: run `make setup` (it installs the VGG19 weights)")
    return str(path)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos from scikit-image's bundled data, as float RGB in [0, 1]."""
    from skimage import data
    return {name: getattr(data, name)().astype(np.float32) / 255.0
            for name in ("astronaut", "chelsea", "coffee")}


@pytest.fixture(scope="session")
def painting():
    """A real public-domain painting shipped with the repository, at 128 px."""
    from pathlib import Path
    image = load_image(Path(__file__).parent.parent / "examples" / "images" / "the_scream.jpg")
    return resize(image, fit_long_side(image.shape[:2], 128))


@pytest.fixture(scope="session")
def tiny_net(tmp_path_factory):
    """A small smooth network (tanh, sigmoid, average pooling) with random weights."""
    return write_tiny_net(tmp_path_factory.mktemp("tinynet"))
