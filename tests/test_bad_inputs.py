"""Issue 7: every bad input is one clear line, a distinct exit code, and no partial output.

The cases are data in tests/bad_input_cases.py (bench/bad_inputs.py prints
them as a table). Each runs the real ``stylize run``; cases that reach Caffe
with a broken model run in a child process, so that a missed check shows up
as an abort (a negative return code) instead of killing the test run.
"""
from __future__ import annotations

import errno
import os

import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile

from stylize.cli.main import cli

from .bad_input_cases import CASES, IMAGE, Workspace, run_case


@pytest.fixture
def workspace(tmp_path, tiny_net) -> Workspace:
    return Workspace(tmp_path, *tiny_net).setup()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, workspace):
    outcome = run_case(case, workspace)
    assert outcome.exit_code >= 0, f"killed by signal {-outcome.exit_code}: {outcome.stderr[-2000:]}"
    assert outcome.exit_code == case.exit_code, (outcome.exit_code, outcome.stderr)
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert outcome.stdout == ""
    if case.exit_code == 0:
        assert outcome.stderr == ""
    else:
        message = outcome.stderr
        assert message.startswith("stylize: error: ") and message.endswith("\n"), message
        assert message.count("\n") == 1, message
        assert case.fragment in message, (case.fragment, message)
    assert outcome.output == case.output
    assert outcome.strays == []


@pytest.mark.parametrize("case", [c for c in CASES if c.size], ids=[c.id for c in CASES if c.size])
def test_output_size_of_unusual_images(case, workspace):
    """EXIF orientation reaches the output: a portrait photo stays portrait."""
    args = case.args(workspace)
    result = CliRunner().invoke(cli, args, prog_name="stylize")
    assert result.exit_code == 0, result.output
    with Image.open(workspace.out) as img:
        assert img.size == case.size


def test_the_table_covers_every_exit_code():
    """Success and each error category (usage 2, image 3, model 4, plugin 5, numerical 6)."""
    assert {case.exit_code for case in CASES} == {0, 2, 3, 4, 5, 6}
    assert {case.category for case in CASES} == {"image", "output", "options", "models", "numerics"}


def test_every_case_has_a_unique_id():
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "forced-over-existing"])
def test_failure_while_writing_leaves_no_partial_file(workspace, monkeypatch, existing):
    """A full disk in the middle of writing: no temporary file stays, an older output survives."""
    out = workspace.out
    if existing:
        out.parent.mkdir()
        out.write_bytes(b"the earlier result")
    real_save = Image.Image.save

    def disk_full(self, fp, *args, **kwargs):
        if hasattr(fp, "write"):
            fp.write(b"\x89PNG half an image")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", disk_full)
    result = CliRunner().invoke(cli, workspace.args("--force"), prog_name="stylize")
    assert result.exit_code == IMAGE, result.output
    assert result.stderr.startswith("stylize: error: ") and "No space left on device" in result.stderr
    assert result.stderr.count("\n") == 1
    if existing:
        assert os.listdir(out.parent) == [out.name] and out.read_bytes() == b"the earlier result"
    else:
        assert not out.parent.exists() or os.listdir(out.parent) == []


def test_truncated_images_are_never_loaded_silently():
    """Pillow's LOAD_TRUNCATED_IMAGES would turn a cut file into a grey-padded image."""
    import stylize.cli.main  # noqa: F401  (everything the command imports)
    import stylize.core.io.images  # noqa: F401
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_internal_errors_are_one_line_with_their_own_exit_code(workspace, monkeypatch):
    """A bug is not a bad input: exit 70, one line that says where, the traceback with --debug."""
    import stylize.api

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(stylize.api, "Job", broken)
    result = CliRunner().invoke(cli, workspace.args(), prog_name="stylize")
    assert result.exit_code == 70
    assert result.stderr.startswith("stylize: error: internal error") and result.stderr.count("\n") == 1
    assert "ZeroDivisionError" in result.stderr and "test_bad_inputs.py" in result.stderr
    debug = CliRunner().invoke(cli, ["--debug", *workspace.args()], prog_name="stylize")
    assert isinstance(debug.exception, ZeroDivisionError)


def test_warnings_do_not_reach_stderr(workspace):
    """numpy's overflow warning on the way to a NaN would make the message several lines."""
    result = CliRunner().invoke(cli, workspace.args("-r", "1e308"), prog_name="stylize")
    assert result.exit_code == 6
    assert "Warning" not in result.stderr and result.stderr.count("\n") == 1
