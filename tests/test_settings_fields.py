"""Each Settings field is declared once and reaches every driver its declaration names (issue 26 item 2).

For every field, a value other than its default (made from its declaration)
is given the way each driver takes it: on ``stylize run``'s command line, in
a batch manifest row, in a request from the web page, to ``stylize video``;
the settings made must hold it, and a checkpoint made with another value must
be refused exactly for the fields that change the result. A field added in a
subclass gets the core's rules (checkpoint, JSON form) from its declaration
alone. No driver package imports another, and presets apply in core only.
"""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from stylize.batch import jobs as batch_jobs
from stylize.cli import run as run_cli
from stylize.cli.backend_options import BACKEND_OPTIONS
from stylize.cli.batch import batch as batch_command
from stylize.cli.batch_options import BATCH_OWN, RunOptions
from stylize.cli.config import option_name
from stylize.cli.main import cli
from stylize.cli.setting_options import option_for, settings_from_options
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import UsageError
from stylize.core.request.fields import BATCH, FORM, RUN, SERVER, VIDEO, described, long_flag, setting
from stylize.core.run.job import metadata
from stylize.core.request.settings import Settings, check_tile_size, read_json, settings_from
from stylize.serve.config import ServeConfig
from stylize.serve.catalogue import FIELDS
from stylize.serve.forms import _settings_fields, form_of
from stylize.serve.work import WorkFolder

HELP = {"help_option_names": ["-h", "--help"]}
FIELDS_ABOUT = described(Settings)
#: Fields given through a driver's options (``options`` is ``--set``'s, tested with the plugins).
OFFERED = [name for name, (about, _) in FIELDS_ABOUT.items() if about.drivers]


def plain(value):
    return json.loads(json.dumps(value))


def sample(name: str) -> tuple[str, object, object]:
    """(text as typed, JSON value as a page sends it, the field's value) other than the default."""
    about, default = FIELDS_ABOUT[name]
    if about.choices is not None:
        value = next(choice for choice in about.choices if choice != default)
        return str(value), value, value
    if about.type is bool:
        return "true", True, True
    if about.multiple:
        return "tv", ["tv"], ["tv"]
    if about.parse is check_tile_size:
        return "512", "512", 512
    if about.parse is not None:
        return "2,3", "2,3", about.parse("2,3")
    if about.type is int:
        value = (default or 0) + 2
        return str(value), value, value
    if about.type is float:
        value = (default or 1.0) * 2
        return repr(value), value, value
    return "style", "style", "style"  # text: a start's name is valid for --init too


def flag_of(name: str) -> str:
    return long_flag(name, FIELDS_ABOUT[name][0])


def help_of(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def run_settings(*args: str) -> Settings:
    """The Settings `stylize run` makes of ``args``."""
    ctx = run_cli.run.make_context("run", ["-c", "x.png", "-s", "y.png", "-o", "o.png", *args], **HELP)
    named = {"content", "styles", "output", "content_mask", "style_masks", "save_every", "save_dir",
             "checkpoint_every", "resume", "quiet", "preview", "force", "dry_run"}
    given = {key: value for key, value in ctx.params.items() if key not in named}
    backend = {key: given.pop(key) for key in list(given) if key in BACKEND_OPTIONS}
    return settings_from_options(ctx, given, backend)


def test_every_field_declares_its_help_and_drivers():
    assert set(FIELDS_ABOUT) == {f.name for f in dataclasses.fields(Settings)}
    for name, (about, _) in FIELDS_ABOUT.items():
        assert len(about.help) > 20, name
        assert about.drivers <= {RUN, VIDEO, BATCH, FORM, SERVER}, name


@pytest.mark.parametrize("name", OFFERED)
def test_stylize_run_offers_it_and_makes_settings_with_it(name):
    about = FIELDS_ABOUT[name][0]
    text, _, value = sample(name)
    if RUN not in about.drivers:
        assert flag_of(name) + " " not in help_of("run")
        return
    assert f"{flag_of(name)} " in help_of("run") and " ".join(about.help.split()[:6]) in \
        " ".join(help_of("run").split())
    args = [flag_of(name)] if about.type is bool else [flag_of(name), text]
    assert plain(getattr(run_settings(*args), name)) == plain(value)


@pytest.mark.parametrize("name", OFFERED)
def test_stylize_video_offers_exactly_the_fields_that_declare_it(name):
    shown = f"{flag_of(name)} " in help_of("video")
    assert shown == (VIDEO in FIELDS_ABOUT[name][0].drivers)


@pytest.mark.parametrize("name", OFFERED)
def test_a_batch_manifest_row_sets_it(name, tmp_path):
    about = FIELDS_ABOUT[name][0]
    ctx = batch_command.make_context("batch", [], **HELP)
    options = RunOptions(ctx, dict(ctx.params))
    text, value_json, value = sample(name)
    key = option_name(option_for(name, about, None))
    if BATCH not in about.drivers:
        with pytest.raises(UsageError, match="unknown key"):
            options.row_options(batch_jobs.Row("m, job 1", "a.png", ["b.png"], "o.png", {key: text}, tmp_path, True))
        return
    for row_value, is_text in ((text, True), (value_json, False)):  # a CSV cell, a TOML value
        row = batch_jobs.Row("m, job 1", "a.png", ["b.png"], "o.png", {key: row_value}, tmp_path, is_text)
        job = options.job(str(tmp_path / "a.png"), [str(tmp_path / "b.png")], str(tmp_path / "o.png"),
                          options.row_options(row))
        assert plain(getattr(job.settings, name)) == plain(value), (name, row_value)
    if name not in BATCH_OWN:  # and on the batch's command line, as every job's default
        assert f"{flag_of(name)} " in help_of("batch")


@pytest.mark.parametrize("name", OFFERED)
def test_the_web_form_takes_it_or_the_server_sets_it(name, tmp_path):
    about = FIELDS_ABOUT[name][0]
    _, value_json, value = sample(name)
    work, config = WorkFolder(tmp_path), ServeConfig(work=tmp_path)
    assert (name in FIELDS) == (FORM in about.drivers)
    if FORM in about.drivers:
        assert plain(_settings_fields({name: value_json}, work, config)[name]) == plain(value)
        assert form_of({name: plain(value)})[name] == value_json  # a result's settings back into the form
    if SERVER in about.drivers:
        config = dataclasses.replace(config, **{name: value})
        assert plain(_settings_fields({}, work, config)[name]) == plain(value)


def test_a_page_cannot_point_the_server_at_a_scheduler_of_its_choosing(tmp_path):
    """``scheduler`` is the server's (``stylize serve --scheduler``): a visitor's address is refused, not dialled."""
    from stylize.serve.work import Refused
    with pytest.raises(Refused, match="server-only setting"):
        _settings_fields({"scheduler": "tcp://203.0.113.7:8786"}, WorkFolder(tmp_path), ServeConfig(work=tmp_path))


@pytest.mark.parametrize("name", OFFERED)
def test_a_checkpoint_refuses_a_change_of_a_field_that_changes_the_result(name):
    _, _, value = sample(name)
    saved = checkpoints.fingerprint(Settings(), {})
    now = checkpoints.fingerprint(settings_from(**{name: value}), {})
    if FIELDS_ABOUT[name][0].result:
        with pytest.raises(UsageError, match=f"cannot resume .*{flag_of(name)}: "):
            checkpoints.Checkpoint(1, 0, 1, None, saved).check(now, "out.png.checkpoint.npz")
    else:
        assert saved == now


def test_the_json_form_round_trips_every_field_and_is_the_png_metadata():
    given = {name: sample(name)[2] for name in OFFERED}
    settings = settings_from(**given, options={"adam": {"lr": 2.0}, "gram": {"layers": "a,b"}})
    text = settings.to_json()
    back = Settings.from_json(text)
    assert back.to_dict() == settings.to_dict() and back.to_dict()["tile_size"] == 512
    assert set(json.loads(text)) == set(FIELDS_ABOUT)
    assert read_json(metadata(settings, "c.png", ["s.png"])["stylize:settings"]) == settings.to_dict()
    assert read_json("Settings(iterations=3)") is None  # an older version's repr: not read as settings
    with pytest.raises(UsageError, match="settings: an unknown setting 'iteratons'; did you mean 'iterations'"):
        Settings.from_dict({"iteratons": 3})
    with pytest.raises(UsageError, match="not the JSON form"):
        Settings.from_json("[1, 2]")


def test_a_field_added_in_a_subclass_gets_the_core_rules_from_its_declaration():
    @dataclasses.dataclass
    class Glowing(Settings):
        glow: float = setting(0.5, type=float, help="How much the picture glows, 0 to 1 (a test's field).")
        glow_threads: int = setting(1, type=int, result=False, help="Threads of the glow (a test's field).")

    assert "glow" in described(Glowing)
    saved = checkpoints.fingerprint(Glowing(), {})
    assert checkpoints.differences(saved, checkpoints.fingerprint(Glowing(glow=0.7), {})) == \
        ["--glow: 0.5 in the checkpoint, 0.7 now"]
    assert checkpoints.fingerprint(Glowing(glow_threads=4), {}) == saved
    assert Glowing.from_json(Glowing(glow=0.25).to_json()).glow == 0.25
    with pytest.raises(TypeError, match="did you mean 'glow'"):
        settings_from(cls=Glowing, glwo=0.75)
    option = option_for("glow", described(Glowing)["glow"][0], 0.5)
    assert option.opts == ["--glow"] and option.type == click.FLOAT and "glows" in option.help


def test_presets_apply_in_core_the_same_for_every_driver():
    assert run_settings("--preset", "photo", "--quality", "draft", "-r", "50") == \
        settings_from(None, "photo", "draft", ratio=50.0)


def test_backend_flags_in_run_help_say_whose_they_are():
    params = {param.name: param for param in run_cli.run.params}
    assert BACKEND_OPTIONS and {"precision", "prototxt", "model_dir", "weights"} <= BACKEND_OPTIONS
    for name in BACKEND_OPTIONS:
        assert params[name].help.rstrip().endswith(".)") and "(Backend" in params[name].help, name
    text = " ".join(help_of("run").split())
    assert "(Backends: caffe, caffe-caffenet, caffe-googlenet, caffe-vgg16, caffe-vgg19.)" in text


DRIVERS = ("batch", "serve", "video")


def imports_of(path: Path) -> set[str]:
    found = set()
    package = ".".join(path.relative_to(Path(run_cli.__file__).parents[2]).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            found.add(".".join(part for part in (base, node.module) if part))
    return found


def test_no_driver_package_imports_another_or_the_command_line():
    """batch, serve and video build on the core only; cli, the command line of each, may import them."""
    root = Path(run_cli.__file__).parents[1]
    crossing = []
    for driver in DRIVERS:
        for path in sorted((root / driver).rglob("*.py")):
            for target in imports_of(path):
                parts = target.split(".")
                if parts[0] == "stylize" and len(parts) > 1 and parts[1] in (*DRIVERS, "cli") and parts[1] != driver:
                    crossing.append(f"{path.relative_to(root.parent)} imports {target}")
    assert not crossing, crossing
    assert "stylize.batch.jobs" in imports_of(root / "cli" / "batch_options.py")  # the walk sees imports


def test_the_job_api_takes_the_scheduler_and_a_resume_may_move_clusters(tiny):
    import numpy as np

    from stylize.core.run.job import Job

    picture = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    job = Job(picture, picture, length=24, iterations=2, scheduler="tcp://127.0.0.1:8786", **tiny)
    here = Job(picture, picture, length=24, iterations=2, **tiny)
    assert job.settings.scheduler == "tcp://127.0.0.1:8786" and here.settings.scheduler is None
    assert job.fingerprint == here.fingerprint  # not a result-changing field
    assert read_json(job.metadata["stylize:settings"])["scheduler"] == "tcp://127.0.0.1:8786"


def test_a_video_work_folder_is_keyed_by_the_settings_that_change_the_frames(photos, tiny, tmp_path):
    from stylize.video import VideoJob
    from stylize.video.synthetic import pan, write_clip

    clip = write_clip(pan(photos["astronaut"], 2, 48, step=2), tmp_path / "pan.mp4", fps=10)
    style = photos["coffee"]

    def key(**fields) -> str:
        return VideoJob(clip, style, tmp_path / "out.mp4", **{**tiny, "length": 48, **fields}).key()

    assert key() == key(threads=2, tile_size=64, bit_depth=16) != key(ratio=5e3)


def test_a_checkpoint_written_before_the_json_form_still_matches():
    """Checkpoints of earlier versions fingerprinted ``dataclasses.asdict`` (tuples and all) as canonical JSON."""
    settings = settings_from(losses=("gram", "tv"), content_layers=("conv4_2",), style_weights=(3.0, 1.0),
                             options={"tv": {"weight": 5.0}}, threads=2)
    earlier = {name: json.dumps(value, sort_keys=True, default=str) for name, value in
               dataclasses.asdict(settings).items() if name not in {"threads", "gpu", "tile_size", "bit_depth",
                                                                      "scheduler"}}
    assert checkpoints.fingerprint(settings, {}) == earlier
