"""Shared fixtures: real photos, tiny Caffe networks written with pycaffe, real weights."""
from __future__ import annotations

import signal

import numpy as np
import pytest

from stylize.backends import bf16, zoo
from stylize.core.io.images import fit_long_side, load_image, resize

from .tinynet import write_tiny_net


@pytest.fixture(autouse=True)
def exact_arithmetic(monkeypatch):
    """``--precision auto`` (the Caffe backends' default) stays fp32 in this process: finite differences,
    tiled-against-whole and the reference images want exact float32. tests/test_bf16.py tests auto itself;
    subprocesses (CLI, serve, batch workers) keep auto as users get it."""
    monkeypatch.setattr(bf16, "AUTO", "fp32")


def pytest_configure(config):
    """Children of this run take SIGINT as a terminal's Ctrl-C, however the suite was started.

    A shell starts a background job (``make test &``) with SIGINT ignored,
    and processes inherit that: the tests that press Ctrl-C on a child
    would see it ignored. A Python handler here is reset to the default in
    every child that execs.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture
def pictures(photos):
    """(content, style) of a Job: the coffee photo (400x600) and the astronaut (512x512)."""
    return photos["coffee"], photos["astronaut"]


@pytest.fixture
def tiny(tiny_net):
    """The Settings fields of a run on the tiny network, on one thread (a module may override it)."""
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1)


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


class _StandInPipeline:
    """What a Job runs, replaced by a function with ``pipeline.transfer``'s signature (see ``replace_transfer``)."""

    losses = ()  # no loss to finish the picture after the last level (the transfer stands in for all of them)

    def __init__(self, settings, plan, transfer):
        self.settings, self.plan, self.transfer = settings, plan, transfer

    def estimate(self):
        from stylize.core.run.events import Estimate
        return Estimate(None, None, None, (None,) * len(self.plan.levels), None)

    def run(self, inputs, on_step, start=None, on_level=None, views=None):
        from stylize.core.evaluation.objective import Objective

        class NoTerms(Objective):
            def __init__(self):
                self.terms, self.losses = {}, []

        return self.transfer(inputs.content, inputs.styles, self.settings,
                             callback=lambda result: on_step(result, NoTerms()), content_mask=inputs.content_mask,
                             style_masks=inputs.style_masks, start=start)


@pytest.fixture
def replace_transfer(monkeypatch):
    """``replace_transfer(fake)``: Jobs (the CLI's and the API's) run ``fake`` instead of their pipeline.

    ``fake(content, styles, settings, callback=, content_mask=, style_masks=, start=)`` is called like
    ``stylize.core.run.pipeline.transfer``, which it may call itself to run for real around a spy.
    """
    from stylize.core.run.job import Job

    def install(fake):
        monkeypatch.setattr(Job, "pipeline", property(lambda job: _StandInPipeline(job.settings, job.plan, fake)))
    return install
