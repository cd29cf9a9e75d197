"""The Job API: the plan before running, events in order with their content, cancel from another thread."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from stylize import Cancelled, Job, events
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError, UsageError


@pytest.fixture
def tiny(tiny_net):
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1)


@pytest.fixture
def pictures(photos):
    return photos["coffee"], photos["astronaut"]


def kinds(seen):
    return [type(event).__name__ for event in seen]


def test_plan_is_made_once_from_the_inputs_without_a_network(tiny, pictures):
    content, style = pictures  # 400x600 and 512x512
    job = Job(content, style, length=128, iterations=14, scales=3, style_scale=0.5, **tiny)
    assert [level.length for level in job.plan.levels] == [32, 64, 128]
    assert [level.shape for level in job.plan.levels] == [(21, 32), (42, 64), (85, 128)]
    assert [level.style_shapes for level in job.plan.levels] == [((16, 16),), ((32, 32),), ((64, 64),)]
    assert [level.iterations for level in job.plan.levels] == [8, 3, 3]  # 2:1:1
    assert [level.first_step for level in job.plan.levels] == [0, 8, 11] and job.plan.iterations == 14
    assert "pipeline" not in vars(job)  # nothing loaded yet


def test_events_in_order_with_their_content(tiny, pictures, tmp_path):
    output = tmp_path / "out.png"
    job = Job(*pictures, output=output, length=48, iterations=6, scales=2, level_iterations=(4, 2), save_every=3,
              checkpoint_every=2,
              **tiny)
    seen = []
    image = job.run(seen.append, preview_every=0.0)
    assert kinds(seen) == [
        "FirstImage", "Started", "LevelStarted", "Step", "Step", "CheckpointWritten", "Step", "SnapshotWritten",
        "Step", "CheckpointWritten", "LevelStarted", "Step", "Step", "SnapshotWritten", "CheckpointWritten", "Finished"]
    first, started, finished = seen[0], seen[1], seen[-1]
    assert first.level.index == 0 and first.image.shape == (*first.level.shape, 3)
    assert started.plan is job.plan and started.first_step == 0
    assert started.estimate.memory_bytes > 0 and all(f > 0 for f in started.estimate.level_flops)
    assert started.estimate.level_flops[1] > 3 * started.estimate.level_flops[0]  # 4x the pixels
    steps = [e for e in seen if isinstance(e, events.Step)]
    assert [s.step for s in steps] == [1, 2, 3, 4, 5, 6] and {s.total for s in steps} == {6}
    assert [s.level for s in steps] == [0, 0, 0, 0, 1, 1] and {s.levels for s in steps} == {2}
    for step in steps:
        assert set(step.terms) == {"content", "gram"} and all(v >= 0 for v in step.terms.values())
        assert step.preview is not None and step.preview.shape == (step.result.image.shape)
    assert [s.elapsed for s in steps] == sorted(s.elapsed for s in steps)
    assert steps[-1].eta == 0.0 and all(s.eta > 0 for s in steps[:-1])
    assert [e.level.index for e in seen if isinstance(e, events.LevelStarted)] == [0, 1]
    snapshots = [e for e in seen if isinstance(e, events.SnapshotWritten)]
    assert [e.step for e in snapshots] == [3, 6]
    assert all(e.path == job.snapshot_path(e.step) and e.path.exists() for e in snapshots)
    assert [e.step for e in seen if isinstance(e, events.CheckpointWritten)] == [2, 4, 6]
    assert finished.output == output and np.array_equal(finished.image, image) and finished.seconds > 0
    assert output.exists() and not checkpoints.path_for(output).exists()


def test_cancel_from_another_thread_keeps_a_checkpoint_and_writes_no_output(tiny, pictures, tmp_path):
    output = tmp_path / "out.png"
    job = Job(*pictures, output=output, length=48, iterations=40, scales=2, checkpoint_every=100, **tiny)
    seen = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, events.Step) and event.step == 3:  # mid-level: the first has 27 iterations
            threading.Thread(target=job.cancel).start()
            threading.Event().wait(0.2)  # the cancel lands while this iteration's work goes on

    with pytest.raises(Cancelled) as caught:
        job.run(on_event)
    cancelled = seen[-1]
    assert isinstance(cancelled, events.Cancelled) and cancelled.reason == "cancelled"
    assert cancelled.step == caught.value.step == 4 and cancelled.output is None
    assert cancelled.checkpoint == caught.value.checkpoint == checkpoints.path_for(output)
    assert isinstance(seen[-2], events.CheckpointWritten) and seen[-2].step == 4
    assert not output.exists() and checkpoints.load(cancelled.checkpoint).step == 4
    assert not any(isinstance(e, (events.Finished, events.Failed)) for e in seen)
    # The checkpoint resumes where the cancel left off.
    resumed = Job(*pictures, output=output, length=48, iterations=40, scales=2, checkpoint_every=100, resume=True,
                  **tiny)
    steps = []
    resumed.run(lambda e: steps.append(e.step) if isinstance(e, events.Step) else None)
    assert steps[0] == 5 and steps[-1] == 40 and output.exists()


def test_cancel_before_running_loads_nothing(tiny, pictures):
    job = Job(*pictures, length=32, iterations=4, **tiny)
    job.cancel()
    seen = []
    with pytest.raises(Cancelled):
        job.run(seen.append)
    assert kinds(seen) == ["Cancelled"] and "pipeline" not in vars(job)


def test_a_failure_is_the_last_event_with_its_one_line_message_and_exit_code(tiny, pictures, tmp_path):
    job = Job(*pictures, length=32, iterations=4, **{**tiny, "options": {"caffe": {
        "prototxt": tiny["options"]["caffe"]["prototxt"], "weights": str(tmp_path / "missing.caffemodel")}}})
    seen = []
    with pytest.raises(Exception) as caught:
        job.run(seen.append)
    failed = seen[-1]
    assert kinds(seen) == ["FirstImage", "Failed"] and failed.error is caught.value  # the start needs no network
    assert failed.exit_code == 4 and "missing.caffemodel" in failed.message and "\n" not in failed.message


def test_bad_input_is_refused_when_the_job_is_made(tiny, pictures):
    """The API refuses what the CLI refuses, before any network: here a 2000x1 strip."""
    strip = np.zeros((1, 2000, 3), np.float32)
    with pytest.raises(ImageError, match="content image array 1x2000x3 would be"):
        Job(strip, pictures[1], length=512, **tiny)
    with pytest.raises(UsageError, match="did you mean 'weight'"):
        Job(*pictures, **{**tiny, "options": {**tiny["options"], "gram": {"wieght": 2}}})


def test_png_metadata_names_the_inputs(tiny, pictures, tmp_path):
    Job(*pictures, output=tmp_path / "o.png", length=24, iterations=1, **tiny).run()
    with Image.open(tmp_path / "o.png") as image:
        assert image.text["stylize:content"] == "array 400x600x3" and json.loads(image.text["stylize:settings"])["iterations"] == 1


def test_eta_weights_each_level_by_its_cost_and_charges_each_levels_start():
    """4 coarse iterations (cost 1 each, plus the level's start) took 8 s: the finer ones cost 4 and 16 each."""
    import time

    from stylize.core.run.eta import LEVEL_START_ITERATIONS as S, Clock
    from stylize.core.planning.plan import make_plan
    from stylize.core.request.settings import Settings

    plan = make_plan(Settings(iterations=7, scales=3), (512, 512), [(512, 512)], level_iterations=[4, 2, 1])
    clock = Clock(plan, level_costs=[1, 4, 16])
    assert clock.cost(0, 7) == (4 + S) * 1 + (2 + S) * 4 + (1 + S) * 16 and clock.eta(0) is None
    assert clock.cost(1, 7) == 3 + (2 + S) * 4 + (1 + S) * 16  # the first level's start is behind
    clock.started = time.monotonic() - 8.0
    assert [clock.step(i) is not None for i in range(1, 5)] == [True] * 4
    assert clock.work == 4 + S and clock.eta(4) == pytest.approx(8 / (4 + S) * ((2 + S) * 4 + (1 + S) * 16), rel=0.01)
    clock.step(6)
    assert clock.work == 4 + S + 4 and clock.eta(6) == pytest.approx(8 / (8 + S) * (1 + S) * 16, rel=0.01)
    # Each level's own iterations and seconds, for the rate of its arithmetic: 8 s before the first
    # level's 4, nearly nothing before the second's one.
    assert clock.level_iterations == [4, 1, 0] and clock.level_elapsed[0] >= 8.0 > 1.0 > clock.level_elapsed[1]
    assert clock.level_charged == [4 + S, 1, 0]  # the second level's start (step 5) was never counted
    unknown = Clock(plan, level_costs=[None, None, None])  # pixels instead: 1 : 4 : 16 here too
    assert unknown.cost(0, 7) == (4 + S) * 128 * 128 + (2 + S) * 256 * 256 + (1 + S) * 512 * 512


def test_eta_starts_from_the_recorded_rate_and_moves_to_the_runs_own():
    """Expected 2 s per unit of cost; the run measures 4 s per unit: the ETA moves from 2 toward 4."""
    import time

    from stylize.core.run.eta import LEVEL_START_ITERATIONS as S, PRIOR_ITERATIONS, Clock
    from stylize.core.planning.plan import make_plan
    from stylize.core.request.settings import Settings

    plan = make_plan(Settings(iterations=7, scales=3), (512, 512), [(512, 512)], level_iterations=[4, 2, 1])
    total = Clock(plan, [1, 4, 16]).cost(0, 7)
    clock = Clock(plan, level_costs=[1, 4, 16], expected_seconds=2.0 * total)
    clock.started = time.monotonic() - 4.0 * (1 + S)  # the first iteration (cost 1 + the level's start)
    left = clock.cost(1, 7)
    assert clock.step(1) == pytest.approx((4 * (1 + S) + 2 * PRIOR_ITERATIONS) / (1 + S + PRIOR_ITERATIONS) * left,
                                          rel=0.01)
    for step in range(2, 5):
        clock.step(step)
    clock.started = time.monotonic() - 4.0 * (4 + S)  # 4 iterations, 4 s per unit
    assert 2 * clock.cost(4, 7) < clock.eta(4) < 4 * clock.cost(4, 7)
    assert Clock(plan, [1, 4, 16]).step(1) is not None  # without a recorded rate: the run's own


def test_progress_line_shows_each_terms_share_and_the_eta():
    from stylize.cli.progress import describe
    step = events.Step(5, 10, 1, 3, 3.0e11, {"content": 1.0e11, "gram": 2.0e11}, 12.0, 75.0)
    assert describe(step) == "loss 3e+11 (content 1e+11, gram 2e+11), scale 2/3, eta 1 min 15 s"


@pytest.mark.parametrize("key, suggestion", [("rl", "lr"), ("betta1", "beta1"), ("dacay", "decay")])
def test_a_misspelt_plugin_option_suggests_the_declared_one(key, suggestion):
    from stylize.core.contracts.options import check
    from stylize.optimizers.adam import Adam
    with pytest.raises(UsageError, match=f"optimizer 'adam' has no option '{key}'; did you mean '{suggestion}'"):
        check("optimizer", "adam", Adam, {key: 1.0})


def test_tol_ends_each_level_once_its_objective_stops_improving(tiny, pictures):
    from stylize.core.run.convergence import WINDOW, Stall
    stall = Stall(0.01)
    assert not any(stall(100.0 - 0.001 * i) for i in range(WINDOW))  # not before a whole window
    assert stall(100.0 - 0.001 * WINDOW)  # 0.02% over the window: stalled
    assert not Stall(0.0)(1.0) and not Stall(0.01)(float("inf"))

    def steps(tol):
        seen = []
        Job(*pictures, length=48, iterations=120, scales=2, tol=tol, **tiny).run(seen.append)
        return [e for e in seen if isinstance(e, events.Step)]

    full, stopped = steps(0.0), steps(0.05)
    assert [s.step for s in full] == list(range(1, 121)) and not any(s.converged for s in full)
    converged = [s for s in stopped if s.converged]
    assert converged and len(stopped) < 120
    for step in converged:  # each stop comes after a whole window of its level, and the next level goes on
        level = Job(*pictures, length=48, iterations=120, scales=2, **tiny).plan.levels[step.level]
        assert step.step - level.first_step > WINDOW
        assert all(s.step <= step.step or s.level > step.level for s in stopped)
    assert stopped[-1].level == 1  # the last level ran


def test_a_long_run_records_this_machines_rate_for_the_next_estimate(tmp_path, monkeypatch):
    from stylize.core.planning import speed
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    assert speed.rate("caffe-vgg19", None) == speed.ASSUMED_RATE
    many = speed.MIN_ITERATIONS
    speed.record("caffe-vgg19", None, flops=6e12, seconds=speed.MIN_SECONDS / 2, iterations=many)  # too short
    speed.record("caffe-vgg19", None, flops=6e12, seconds=60.0, iterations=2)  # too few iterations: mostly set-up
    assert speed.rate("caffe-vgg19", None) == speed.ASSUMED_RATE
    speed.record("caffe-vgg19", None, flops=6e12, seconds=60.0, iterations=many)
    assert speed.rate("caffe-vgg19", None) == pytest.approx(1e11)
    speed.record("caffe-vgg19", None, flops=6e12, seconds=240.0, iterations=many)  # a loaded run: half way
    assert speed.rate("caffe-vgg19", None) == pytest.approx(5e10)
    assert speed.rate("caffe-vgg19", 1) == speed.ASSUMED_RATE  # per thread count
    assert speed.rate("caffe-vgg19", None, "bf16") == pytest.approx(5e10)  # none yet: the ordinary one
    speed.record("caffe-vgg19", None, flops=6e12, seconds=30.0, iterations=many, arithmetic="bf16")
    assert speed.rate("caffe-vgg19", None, "bf16") == pytest.approx(2e11)
    assert speed.rate("caffe-vgg19", None) == pytest.approx(5e10)  # per arithmetic
    (tmp_path / "cache" / "speed.json").write_text("not json")
    assert speed.rate("caffe-vgg19", None) == speed.ASSUMED_RATE


def test_each_level_is_estimated_and_recorded_at_the_rate_of_its_arithmetic(tiny, pictures, tmp_path,
                                                                           monkeypatch):
    """The finest level runs in another arithmetic ("fast", 4x the FLOP rate): its seconds per iteration
    use that rate, and the run records a rate for each arithmetic from its own levels' seconds."""
    import json

    from stylize.core.planning import speed
    from stylize.core.run.eta import LEVEL_START_ITERATIONS
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "speed.json").write_text(json.dumps({"caffe/1": 1e9, "caffe/1/fast": 4e9}))
    monkeypatch.setattr(speed, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(speed, "MIN_ITERATIONS", 1)
    job = Job(*pictures, length=48, iterations=6, scales=2, **tiny)
    final = job.plan.final.shape
    monkeypatch.setattr(type(job.pipeline.backend), "arithmetic",
                        lambda self, shape: "fast" if tuple(shape) == tuple(final) else "")
    estimate = job.estimate
    assert estimate.level_arithmetic == ("", "fast")
    assert estimate.level_seconds == pytest.approx([f / r for f, r in zip(estimate.level_flops, (1e9, 4e9))])
    start = LEVEL_START_ITERATIONS  # each level's start, in its own iterations
    assert estimate.seconds == pytest.approx(sum((level.iterations + start) * s for level, s in
                                                 zip(job.plan.levels, estimate.level_seconds)))
    job.run(lambda event: None)
    recorded = json.loads((tmp_path / "cache" / "speed.json").read_text())
    assert set(recorded) == {"caffe/1", "caffe/1/fast"}
    assert all(recorded[key] != before for key, before in (("caffe/1", 1e9), ("caffe/1/fast", 4e9)))
