"""End to end on a real photo and a real painting, plus the optimizer on its own."""
import numpy as np
import pytest
import scipy.optimize

from stylize.backends.caffe_vgg import VGG19
from stylize.core.io.images import fit_long_side, resize
from stylize.starts.noise import pink_noise
from stylize.core.evaluation.objective import build_losses, content_weight, make_backend, make_objective
from stylize.core.run.pipeline import transfer
from stylize.core.request.schedule import scale_lengths, split_iterations
from stylize.core.request.settings import Settings
from stylize.optimizers.lbfgs import LBFGS


def test_lbfgs_minimizes_within_bounds_and_reports_each_step():
    target = np.array([[3.0, -2.0, 0.5]], np.float32)

    def objective(x):
        d = x - target
        return float(np.vdot(d, d)), 2 * d

    steps = []
    x = LBFGS().minimize(objective, np.zeros_like(target), (np.full_like(target, -1), np.full_like(target, 1)),
                         iterations=20, callback=steps.append)
    assert np.allclose(x, [[1.0, -1.0, 0.5]], atol=1e-4)  # clipped by the bounds
    assert x.dtype == np.float32
    assert [s.step for s in steps] == list(range(1, len(steps) + 1)) and len(steps) <= 20
    assert steps[-1].value <= steps[0].value


def test_lbfgs_stops_when_callback_raises_stopiteration():
    rosen = scipy.optimize.rosen

    def objective(x):
        return float(rosen(x.ravel())), scipy.optimize.rosen_der(x.ravel()).reshape(x.shape)

    def stop_at_three(result):
        if result.step == 3:
            raise StopIteration

    seen = []
    LBFGS().minimize(objective, np.zeros((1, 6), np.float32), (np.full((1, 6), -5.0), np.full((1, 6), 5.0)),
                     iterations=100, callback=lambda r: (seen.append(r.step), stop_at_three(r)))
    assert seen == [1, 2, 3]


def test_content_weight_keeps_the_balance_across_sizes():
    assert content_weight((512, 512)) == 1.0
    assert content_weight((256, 512)) == 2.0


def test_scales_halve_down_to_128_and_the_finest_level_gets_as_many_as_the_one_before():
    assert scale_lengths(512, None) == [128, 256, 512]
    assert scale_lengths(200, None) == [200]
    assert scale_lengths(512, 1) == [512] and scale_lengths(512, 2) == [256, 512]
    assert split_iterations(320, 3) == [160, 80, 80] and split_iterations(7, 1) == [7]
    assert split_iterations(161, 2) == [81, 80] and split_iterations(512, 4) == [256, 128, 64, 64]
    for total in range(40):
        for levels in range(1, 5):
            counts = split_iterations(total, levels)
            assert sum(counts) == total and len(counts) == levels and min(counts) >= 0
            assert counts[:-1] == sorted(counts[:-1], reverse=True) and counts[-1] <= counts[max(0, levels - 2)]
            assert levels < 2 or counts[-1] >= counts[-2] - 1


def test_pink_noise_is_seeded_and_in_range():
    a = pink_noise((20, 30), 1.0, np.random.default_rng(7))
    b = pink_noise((20, 30), 1.0, np.random.default_rng(7))
    c = pink_noise((20, 30), 1.0, np.random.default_rng(8))
    assert a.shape == (20, 30, 3) and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
def test_style_transfer_end_to_end(vgg19_weights, photos, painting):
    """Style loss falls 10x from the content start; content stays far closer than the painting's."""
    content = resize(photos["astronaut"], fit_long_side(photos["astronaut"].shape[:2], 128))
    settings = Settings(length=128, iterations=30, ratio=1e4)
    losses = build_losses(settings, VGG19)
    assert [t.name for t in losses] == ["content", "gram"]  # content joins `--loss gram`
    backend = make_backend(settings, losses)
    objective = make_objective(backend, losses, content, painting)

    def terms(image):
        objective(backend.preprocess(image))
        return dict(objective.terms)

    start = terms(content)
    steps = []
    result = transfer(content, painting, settings, callback=steps.append)
    end = terms(result)
    painting_itself = terms(resize(painting, content.shape[:2]))
    assert content_weight(content.shape) == 16  # a 128x128 image is 1/16 of the reference area

    assert result.shape == content.shape and 0 <= result.min() and result.max() <= 1
    assert len(steps) == 30 and steps[-1].image.shape == content.shape
    assert end["gram"] < start["gram"] / 10, (start, end)
    # At the reference's ratio 1e4 the features move a lot (new textures), but
    # stay well below the painting's distance, and the picture is still the photo:
    assert end["content"] < 0.6 * painting_itself["content"], (end, painting_itself)
    assert layout_similarity(result, content) > 0.8
    assert layout_similarity(resize(painting, content.shape[:2]), content) < 0.3


def layout_similarity(a, b):
    """Correlation of 32x32 luminance thumbnails: high when the scene's layout is kept."""
    def thumb(image):
        return resize(image, (32, 32)).mean(axis=2).ravel()
    return float(np.corrcoef(thumb(a), thumb(b))[0, 1])


@pytest.mark.slow
def test_threads_option_limits_blas_during_the_run_only(vgg19_weights, photos, painting):
    from threadpoolctl import threadpool_info

    def openblas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"}

    VGG19(["conv1_1"], weights=vgg19_weights)  # Caffe's OpenBLAS is loaded before we look
    before = openblas_threads()
    seen = []
    image = photos["coffee"][:32, :40]
    transfer(image, painting[:32, :32], Settings(length=40, iterations=2, threads=1),
             callback=lambda result: seen.append(openblas_threads()))
    assert seen and all(threads == {1} for threads in seen)
    assert openblas_threads() == before
