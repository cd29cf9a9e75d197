"""``stylize batch`` without a cluster: jobs from globs and manifests, run's options as defaults, the plan.

What runs on Dask is tested in test_batch_cluster.py; here everything is
decided before a cluster starts, so these tests take a second.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import stylize
from stylize.batch import BatchJob
from stylize.batch import jobs as batch_jobs
from stylize.batch.events import DONE, JobEnded, JobProgress, JobResult, JobStarted
from stylize.batch.plan import FAILED, FINISHED, NEW, RESUME, Planned, local_layout, plan
from stylize.batch.report import Tracker, summary_rows, table
from stylize.cli import run as run_cli
from stylize.cli.batch import batch as batch_command
from stylize.cli.batch_options import RunOptions
from stylize.cli.main import cli
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError, UsageError
from stylize.core.run.events import Estimate


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), prog_name="stylize", **kwargs)


def write_images(folder: Path, seed: int) -> None:
    """photos/{a,b}.png and styles/{a,b}.png in ``folder``: tiny random images."""
    rng = np.random.default_rng(seed)
    for kind in ("photos", "styles"):
        (folder / kind).mkdir()
        for name in ("a", "b"):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / kind / f"{name}.png")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Two contents, two styles (tiny random images) in tmp_path, which is the current folder."""
    write_images(tmp_path, seed=0)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tiny_args(tiny_net) -> list[str]:
    prototxt, weights = tiny_net
    return ["-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-l", "48"]


#: As the `stylize` group gives its commands: click keeps a command's help option once made.
HELP = {"help_option_names": ["-h", "--help"]}


def options_of(*args: str) -> tuple[RunOptions, dict]:
    """The batch command's RunOptions for ``args``, and the other parameters it parsed."""
    ctx = batch_command.make_context("batch", list(args), **HELP)
    params = dict(ctx.params)
    return RunOptions(ctx, params), params


def run_named() -> set[str]:
    """What run's function takes by name: not the settings (those come in ``**given``)."""
    return {name for name, p in inspect.signature(run_cli.run.callback).parameters.items()
            if p.kind is not p.VAR_KEYWORD} - {"ctx"}


def run_settings(*args: str):
    """The Settings `stylize run` makes of ``args`` (with -c/-s/-o given)."""
    ctx = run_cli.run.make_context("run", ["-c", "x.png", "-s", "y.png", "-o", "o.png", *args], **HELP)
    given = {name: value for name, value in ctx.params.items() if name not in run_named()}
    backend = {name: given.pop(name) for name in list(given) if name in run_cli.BACKEND_OPTIONS}
    return run_cli.settings_from_options(ctx, given, backend)


# -- jobs from globs ---------------------------------------------------------------------

def test_globs_make_the_cross_product_and_the_pattern_names_the_outputs(folder):
    options, _ = options_of("-n", "7")
    contents = batch_jobs.expand(["photos/*.png"], "-c")
    styles = batch_jobs.expand(["styles/b.png", "styles/*.png"], "-s")  # b once, in first-seen order
    assert [p.split("/")[-1] for p in styles] == ["b.png", "a.png"]
    pairs = batch_jobs.cross_product(contents, styles)
    outputs = [batch_jobs.output_for("out/{n:02d}-{content}-{style}.png", c, s, n) for n, (c, s) in
               enumerate(pairs, 1)]
    assert outputs == ["out/01-a-b.png", "out/02-a-a.png", "out/03-b-b.png", "out/04-b-a.png"]
    job = options.job(*pairs[0], outputs[0])
    assert job.output == str(folder / "out/01-a-b.png") and job.content == str(folder / "photos/a.png")
    assert job.settings.iterations == 7 and job.checkpoint_every == checkpoints.EVERY


@pytest.mark.parametrize("args, fragment", [
    (["-c", "photos/*.jpg", "-s", "styles/*.png", "-o", "o/{content}.png"], "-c 'photos/*.jpg' matches no file"),
    (["-c", "photos/*.png", "-s", "styles/*.png", "-o", "o/{photo}.png"], "unknown field {photo}"),
    (["-c", "photos/*.png", "-s", "styles/*.png", "-o", "o/{content}.png"], "would both write"),
    (["-c", "photos/*.png", "-s", "styles/*.png"], "give the outputs' pattern"),
    (["-c", "photos/*.png", "-o", "o/{n}.png"], "give content and style images"),
    (["-c", "photos/a.png", "-s", "styles/a.png", "-o", "photos/{content}.png"], "an input image"),
    (["-m", "jobs.toml", "-c", "photos/*.png"], "not both"),
])
def test_bad_job_lists_are_one_line_errors_before_any_work(folder, args, fragment):
    (folder / "jobs.toml").write_text('[[job]]\ncontent = "photos/a.png"\nstyle = "styles/a.png"\n')
    result = invoke("batch", *args)
    assert result.exit_code == UsageError.exit_code, result.output
    assert result.stderr.startswith("stylize: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert not (folder / "o").exists()


# -- stylize run's options ------------------------------------------------------------------

def test_every_job_gets_the_settings_stylize_run_makes_of_the_same_options(folder, tiny_net):
    args = [*tiny_args(tiny_net), "-n", "30", "--loss", "gram", "--loss", "tv", "--set", "tv.weight=5",
            "--init", "noise", "--seed", "3", "-r", "1e3", "--style-weights", "1"]
    options, _ = options_of(*args)
    job = options.job(str(folder / "photos/a.png"), [str(folder / "styles/a.png")], str(folder / "o.png"))
    expected = run_settings(*args)
    assert dataclasses.replace(job.settings, options={}) == dataclasses.replace(expected, options={})
    assert job.settings.options["tv"] == {"weight": 5} and job.settings.losses == ("gram", "tv")


def test_a_preset_fills_in_only_what_neither_the_job_nor_the_command_line_set(folder):
    options, _ = options_of("--preset", "photo", "-r", "50")
    row = batch_jobs.Row("m, job 1", "photos/a.png", ["styles/a.png"], "o.png", {"init": "style"}, folder, False)
    job = options.job("photos/a.png", ["styles/a.png"], "o.png", options.row_options(row))
    assert job.settings.ratio == 50 and job.settings.init == "style"  # the command line's, the job's
    assert "affine" in job.settings.losses  # the preset's


def test_environment_and_config_file_are_defaults_too(folder, monkeypatch):
    (folder / "b.toml").write_text("iterations = 9\nlength = 64\n[set.tv]\nweight = 2\n")
    monkeypatch.setenv("STYLIZE_LENGTH", "80")
    options, params = options_of("--config", "b.toml", "--loss", "tv", "--set", "adam.lr=3", "--optimizer", "adam",
                                 "--scheduler", "tcp://h:1")
    job = options.job("photos/a.png", ["styles/a.png"], "o.png")
    assert (job.settings.iterations, job.settings.length) == (9, 80)  # environment over file
    assert job.settings.options == {"tv": {"weight": 2.0}, "adam": {"lr": 3}}
    assert params["scheduler"] == "tcp://h:1"


def test_toml_and_csv_manifests_give_the_same_jobs(folder, tiny_net):
    (folder / "m").mkdir()
    (folder / "m/jobs.toml").write_text("""
[[job]]
content = "../photos/a.png"
style = ["../styles/a.png", "../styles/b.png"]
output = "out/ab.png"
style-weights = "3,1"
iterations = 12
loss = ["gram", "tv"]
set = {tv = {weight = 7}}

[[job]]
content = "../photos/b.png"
styles = "../styles/b.png"
preserve_colors = true
""")
    (folder / "m/jobs.csv").write_text(
        "content,style,output,style-weights,iterations,loss,set,preserve-colors\n"
        "../photos/a.png,../styles/a.png;../styles/b.png,out/ab.png,\"3,1\",12,gram;tv,tv.weight=7,\n"
        "\n"
        "../photos/b.png,../styles/b.png,,,,,,true\n")
    made = {}
    for name in ("jobs.toml", "jobs.csv"):
        options, _ = options_of(*tiny_args(tiny_net), "-n", "5")
        rows = batch_jobs.read_manifest(folder / "m" / name)
        made[name] = [options.job(batch_jobs.resolve(r.content, r.folder),
                                  [batch_jobs.resolve(s, r.folder) for s in r.styles],
                                  batch_jobs.resolve(r.output or f"out/{n}.png", r.folder), options.row_options(r))
                      for n, r in enumerate(rows, 1)]
    toml, csv = made["jobs.toml"], made["jobs.csv"]
    assert toml == csv
    first, second = toml
    assert first.content == str(folder / "photos/a.png") and first.output == str(folder / "m/out/ab.png")
    assert first.styles == [str(folder / "styles/a.png"), str(folder / "styles/b.png")]
    assert first.settings.style_weights == [3.0, 1.0] and first.settings.iterations == 12
    assert first.settings.options["tv"] == {"weight": 7}
    assert second.settings.iterations == 5 and second.settings.preserve_colors  # the batch's, its own


@pytest.mark.parametrize("text, fragment", [
    ('[[job]]\ncontent = "a.png"\nstyle = "b.png"\nitertions = 3\n', "unknown key 'itertions'"),
    ('[[job]]\ncontent = "a.png"\nstyle = "b.png"\nresume = true\n', "not an option of one job"),
    ('[[job]]\ncontent = "a.png"\nstyle = "b.png"\niterations = "many"\n', "expected an integer"),
    ('[[job]]\ncontent = "a.png"\n', "no style"),
    ('[jobs]\ncontent = "a.png"\n', "expected [[job]] tables only"),
])
def test_manifest_mistakes_name_the_job(folder, text, fragment):
    (folder / "jobs.toml").write_text(text)
    result = invoke("batch", "-m", "jobs.toml", "-o", "o/{n}.png")
    assert result.exit_code == UsageError.exit_code, result.output
    assert fragment in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_csv_cells_are_checked_like_options(folder):
    (folder / "jobs.csv").write_text("content,style,length\nphotos/a.png,styles/a.png,big\n")
    result = invoke("batch", "-m", "jobs.csv", "-o", "o/{n}.png")
    assert result.exit_code == UsageError.exit_code
    assert "jobs.csv, line 2: length = 'big'" in result.stderr


# -- the plan ---------------------------------------------------------------------------------

def test_plan_skips_finished_resumes_checkpointed_and_fails_bad_jobs_alone(folder, tiny_net):
    options, _ = options_of(*tiny_args(tiny_net), "-n", "20")
    (folder / "bad.png").write_text("not an image")
    jobs = [options.job(str(folder / "photos/a.png"), [str(folder / f"styles/{s}.png")], str(folder / f"o/{i}.png"))
            for i, s in enumerate("abab")]
    jobs[3] = dataclasses.replace(jobs[3], content=str(folder / "bad.png"))
    (folder / "o").mkdir()
    Image.new("RGB", (48, 36)).save(jobs[0].output)  # finished
    run = jobs[1].job(resume=False)
    checkpoints.Checkpoint(6, 0, 1, np.zeros((36, 48, 3), np.float32), run.fingerprint).save(jobs[1].checkpoint)
    planned = plan(jobs)
    assert [p.state for p in planned] == [FINISHED, RESUME, NEW, FAILED]
    assert planned[1].first_step == 6 and planned[2].first_step == 0 and planned[2].iterations == 20
    assert planned[2].shape == (36, 48) and planned[2].memory_bytes > 0 and planned[2].seconds > 0
    assert planned[1].seconds == pytest.approx(planned[2].seconds * 14 / 20, rel=0.01)
    assert planned[3].exit_code == ImageError.exit_code and "bad.png" in planned[3].error
    assert [p.state for p in plan(jobs, force=True)][:3] == [NEW, NEW, NEW]


def test_a_checkpoint_of_other_options_says_how_to_start_over(folder, tiny_net):
    options, _ = options_of(*tiny_args(tiny_net), "-n", "20")
    job = options.job(str(folder / "photos/a.png"), [str(folder / "styles/a.png")], str(folder / "o.png"))
    checkpoints.Checkpoint(6, 0, 1, np.zeros((36, 48, 3), np.float32), {"ratio": "1.0"}).save(job.checkpoint)
    [planned] = plan([job])
    assert planned.state == FAILED and "cannot resume" in planned.error and "--force" in planned.error


def test_dry_run_prints_each_jobs_plan_and_runs_nothing(folder, tiny_net):
    (folder / "out").mkdir()
    Image.new("RGB", (48, 36)).save(folder / "out/a-b.png")
    result = invoke("batch", "-c", "photos/*.png", "-s", "styles/*.png", "-o", "out/{content}-{style}.png",
                    *tiny_args(tiny_net), "-n", "30", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["job", "output", "size", "iterations", "memory", "time", "state"]
    assert len(lines) == 5 and "finished: skipped" in lines[2] and lines[1].rstrip().endswith("runs")
    assert "48x36" in lines[1] and " 30 " in lines[1] and "MiB" in lines[1]
    assert "would run on a local Dask cluster of" in result.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["a-b.png"]


@pytest.mark.parametrize("kwargs, expected", [
    (dict(cores=2, memory=None), (2, 1)),
    (dict(cores=8, memory=3 * 2**30), (3, 2)),      # memory for 3 jobs of 1 GiB
    (dict(cores=8, memory=None, threads=4), (2, 4)),
    (dict(cores=8, memory=None, workers=3), (3, 2)),
    (dict(cores=16, memory=None), (4, 4)),          # no more workers than jobs
    (dict(cores=2, memory=2**29), (1, 2)),          # not even one fits: one, and the job itself refuses
])
def test_local_cluster_is_sized_from_cores_jobs_and_memory(kwargs, expected):
    estimate = Estimate(2**30, None, None, (1,), 10.0)
    planned = [Planned(n, BatchJob("c.png", "s.png", f"{n}.png"), NEW, iterations=10, estimate=estimate)
               for n in range(1, 5)]
    layout = local_layout(planned, **kwargs)
    assert (layout.workers, layout.threads) == expected


# -- what a driver sees ------------------------------------------------------------------------

def test_eta_spreads_the_plans_over_the_slots_and_learns_from_the_jobs():
    planned = [Planned(n, BatchJob("c.png", "s.png", f"{n}.png"), NEW, iterations=100,
                       estimate=Estimate(None, None, None, (1,), 10.0)) for n in range(1, 5)]
    tracker = Tracker(planned, slots=2)
    assert tracker.eta() == pytest.approx(20)  # 4 x 10 s over 2 slots
    tracker(JobStarted(1, "w", 0, 100, 1))
    tracker(JobProgress(1, 50, 100, 10.0, 10.0))  # really 20 s, not 10: twice the plan
    assert tracker.calibration() == pytest.approx(2)
    assert tracker.eta() == pytest.approx((10 + 3 * 20) / 2)
    tracker(JobEnded(1, JobResult(1, planned[0].job, DONE, seconds=20)))
    assert tracker.count(DONE) == 1 and tracker.queued == 3 and tracker.eta() == pytest.approx(30)


def test_summary_table_has_a_row_per_job():
    job = BatchJob("/p/c.png", ["/p/s.png"], "/o/c-s.png")
    rows = summary_rows([JobResult(1, job, DONE, seconds=12.4, first_step=30, attempts=2),
                         JobResult(2, job, "failed", error="bad.png: cannot read")])
    assert rows[0] == ("1 c.png -> s.png", "done (resumed at 30), 2 attempts", "12", "/o/c-s.png")
    assert rows[1][1:] == ("failed", "", "bad.png: cannot read")
    text = table(("job", "status", "seconds", "output or error"), rows)
    assert text.splitlines()[0].startswith("job ") and len(text.splitlines()) == 3


def test_python_api_takes_batch_jobs_or_dicts(tmp_path):
    job = batch_jobs.as_job({"content": "c.png", "styles": ["s.png"], "output": "o.png", "iterations": 9})
    assert job.settings.iterations == 9 and job.styles == [str(tmp_path.cwd() / "s.png")]
    with pytest.raises(TypeError, match="unknown setting 'iteration'"):
        batch_jobs.as_job({"content": "c.png", "style": "s.png", "output": "o.png", "iteration": 9})
    assert callable(stylize.batch) and stylize.batch.BatchJob is BatchJob
    result = JobResult(1, job, DONE, seconds=1.0)
    assert json.loads(json.dumps(result.as_dict()))["output"] == job.output


def test_help_lists_batch_options_and_every_run_option():
    result = invoke("batch", "--help")
    assert result.exit_code == 0
    for param in batch_command.params:
        for opt in param.opts:
            assert opt in result.stdout, opt
        if isinstance(param, click.Option):
            assert param.help, param.name
    # Not taken: what run's function names apart from the settings (the batch's own -c/-s/-o take globs and
    # a pattern, it always resumes, it has its own -q, -f and --dry-run), but each job's file options are.
    missing = {p.name for p in run_cli.run.params} - {p.name for p in batch_command.params}
    assert {"content", "output", "resume"} <= missing
    assert missing == run_named() - {"styles", "quiet", "force", "dry_run", "content_mask", "style_masks", "save_every",
                               "save_dir", "checkpoint_every"}


def test_a_worker_declaring_no_cores_gives_each_of_its_threads_a_share_of_the_machine(monkeypatch):
    from types import SimpleNamespace

    from stylize.batch import worker

    monkeypatch.setattr(worker.os, "cpu_count", lambda: 8)
    def fake(nthreads, resources):
        return SimpleNamespace(state=SimpleNamespace(nthreads=nthreads, total_resources=resources))
    assert worker.worker_threads(fake(1, {})) == 8
    assert worker.worker_threads(fake(4, {})) == 2
    assert worker.worker_threads(fake(16, {})) == 1
    assert worker.worker_threads(fake(2, {"cores": 3})) == 3


def test_a_job_process_that_dies_is_explained_in_one_line():
    from collections import deque

    from stylize.batch.worker import _crash

    tail = deque(["I1203 net.cpp:100] loading", "F1203 blob.cpp:32] Check failed: shape_[i] >= 0 (-1 vs. 0)",
                  "*** Check failure stack trace: ***", "    @ 0x7f caffe::Blob<>::Reshape()"])
    assert _crash(-6, tail) == ("the job's process died of SIGABRT (Caffe aborts on fatal errors): "
                                "F1203 blob.cpp:32] Check failed: shape_[i] >= 0 (-1 vs. 0)")
    assert _crash(-9, deque()) == "the job's process died of SIGKILL (killed: out of memory?)"
    assert _crash(1, deque(["boom"])) == "the job's process exited with status 1 without a result: boom"
