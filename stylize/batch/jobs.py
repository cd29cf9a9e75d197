"""The jobs of a batch: from globs (a cross product) or a manifest, each writing its own output.

A ``BatchJob`` is what ``stylize.Job`` takes, with the output required (a
batch keeps every result) and every path absolute, since a Dask worker may
run in another folder or on another machine that mounts the same storage.

A job's state is read from its files, so that rerunning a batch needs no
bookkeeping of its own: an output without a checkpoint is finished; a
checkpoint (with or without an output, which Ctrl-C may have written) is a
job to resume; neither is a job to start.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import os
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import UsageError
from stylize.core.run.job import Job
from stylize.core.request.settings import Settings, settings_from

#: Fields of an output pattern (``-o 'out/{content}-{style}.png'``).
PATTERN_FIELDS = {
    "content": "the content image's name without its extension",
    "style": "the style images' names without extensions, joined by '+'",
    "n": "the job's number, from 1",
}
#: Separator of several values in one CSV cell (styles, losses, --set items).
CSV_LIST = ";"


@dataclass
class BatchJob:
    """One job: a content, its styles (blended when several), an output and the settings of its run."""

    content: str
    styles: Sequence[str]
    output: str
    settings: Settings = field(default_factory=Settings)
    content_mask: str | None = None
    style_masks: Sequence[str] | None = None
    save_every: int | None = None
    save_dir: str | None = None
    checkpoint_every: int = checkpoints.EVERY

    def __post_init__(self):
        if isinstance(self.styles, (str, os.PathLike)):
            self.styles = [self.styles]
        self.content, self.output = absolute(self.content), absolute(self.output)
        self.styles = [absolute(s) for s in self.styles]
        self.content_mask = None if self.content_mask is None else absolute(self.content_mask)
        self.style_masks = None if not self.style_masks else [absolute(m) for m in self.style_masks]
        self.save_dir = None if self.save_dir is None else absolute(self.save_dir)

    @classmethod
    def of(cls, content: str, style: str | Sequence[str], output: str, *, settings: Settings | None = None,
           preset: str | None = None, content_mask: str | None = None, style_masks: Sequence[str] | None = None,
           save_every: int | None = None, save_dir: str | None = None,
           checkpoint_every: int = checkpoints.EVERY, **options: Any) -> "BatchJob":
        """A job as ``stylize.stylize()`` takes it: ``Settings`` fields as keywords over a preset."""
        return cls(content, style, output, settings_from(settings, preset, **options), content_mask,
                   style_masks, save_every, save_dir, checkpoint_every)

    @property
    def checkpoint(self) -> Path:
        return checkpoints.path_for(self.output)

    @property
    def finished(self) -> bool:
        """Its output is written and no checkpoint says that output is an interrupted run's."""
        return Path(self.output).exists() and not self.checkpoint.exists()

    @property
    def name(self) -> str:
        """``photo -> painting`` (several styles: ``photo -> a+b``), for tables and messages."""
        return f"{Path(self.content).name} -> {'+'.join(Path(s).name for s in self.styles)}"

    def job(self, *, resume: bool, threads: int | None = None) -> Job:
        """The ``stylize.Job`` of this job: inputs read, plan made, a checkpoint read when resuming."""
        settings = self.settings if threads is None else dataclasses.replace(self.settings, threads=threads)
        return Job(self.content, list(self.styles), settings, output=self.output, content_mask=self.content_mask,
                   style_masks=self.style_masks, save_every=self.save_every, save_dir=self.save_dir,
                   checkpoint_every=self.checkpoint_every, resume=resume)


def as_job(job: BatchJob | dict) -> BatchJob:
    """A ``BatchJob``, or a dict of ``BatchJob.of``'s arguments (``style`` or ``styles``)."""
    if isinstance(job, BatchJob):
        return job
    if isinstance(job, dict):
        given = dict(job)
        if "styles" in given:
            given["style"] = given.pop("styles")
        return BatchJob.of(**given)  # an unknown setting is a TypeError, as in stylize()
    raise TypeError(f"a batch job is a stylize.batch.BatchJob or a dict, not {type(job).__name__}")


def check_outputs(jobs: Sequence[BatchJob]) -> None:
    """No two jobs write the same file, and no job writes over an input of another."""
    seen: dict[str, int] = {}
    for number, job in enumerate(jobs, 1):
        if job.output in seen:
            raise UsageError(f"jobs {seen[job.output]} and {number} would both write {job.output}; put "
                             f"{{content}}, {{style}} or {{n}} into the output pattern to tell them apart")
        seen[job.output] = number
    inputs = {path for job in jobs for path in (job.content, *job.styles)}
    for number, job in enumerate(jobs, 1):
        if job.output in inputs:
            raise UsageError(f"job {number} would write {job.output}, which is an input image of the batch; "
                             "choose another output pattern")


# -- globs and output patterns ---------------------------------------------------------

def expand(patterns: Iterable[str], option: str) -> list[str]:
    """The files the glob ``patterns`` match, in order, each once; a pattern matching none is an error."""
    found: dict[str, None] = {}
    for pattern in patterns:
        matched = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
        if not matched:
            raise UsageError(f"{option} {pattern!r} matches no file")
        found.update(dict.fromkeys(absolute(p) for p in matched))
    return list(found)


def check_pattern(pattern: str) -> None:
    """An output pattern names only known fields."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as e:
        raise UsageError(f"-o {pattern!r}: {e}") from None
    for name in names:
        if name not in PATTERN_FIELDS:
            fields = ", ".join(f"{{{key}}} ({meaning})" for key, meaning in PATTERN_FIELDS.items())
            raise UsageError(f"-o {pattern!r}: unknown field {{{name}}}; the fields are {fields}")


def output_for(pattern: str, content: str, styles: Sequence[str], number: int) -> str:
    check_pattern(pattern)
    return pattern.format(content=Path(content).stem, style="+".join(Path(s).stem for s in styles), n=number)


def cross_product(contents: Sequence[str], styles: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Every content with every style, content by content."""
    return [(content, [style]) for content in contents for style in styles]


# -- manifests -----------------------------------------------------------------------------

@dataclass
class Row:
    """One job of a manifest, before the run options are applied: ``options`` keyed as in the file."""

    #: Where it comes from, for messages: ``jobs.toml, job 3``.
    where: str
    content: str
    styles: list[str]
    output: str | None
    options: dict[str, Any]
    #: Relative paths in the row are relative to this folder (the manifest's).
    folder: Path
    #: CSV cells are text (``"300"``, ``"a.jpg;b.jpg"``); TOML values have their types.
    text: bool


def read_manifest(path: str | os.PathLike) -> list[Row]:
    """The rows of a TOML (``[[job]]`` tables) or CSV (a header row) manifest; paths relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--manifest {path}: no such file")
    if path.suffix.lower() == ".toml":
        return _toml_rows(path)
    if path.suffix.lower() == ".csv":
        return _csv_rows(path)
    raise UsageError(f"--manifest {path}: expected a .toml or .csv file")


def _toml_rows(path: Path) -> list[Row]:
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"--manifest {path}: not valid TOML ({e})") from None
    stray = sorted(set(table) - {"job"})
    entries = table.get("job")
    if stray or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"--manifest {path}: expected [[job]] tables only (content = ..., style = ..., "
                         f"output = ..., and any option of `stylize run`)"
                         + (f"; found {', '.join(stray)}" if stray else ""))
    rows = []
    for number, entry in enumerate(entries, 1):
        entry = dict(entry)
        where = f"{path}, job {number}"
        content, styles, output = _take(entry, where)
        if not isinstance(content, str) or not isinstance(output, (str, type(None))):
            raise UsageError(f"{where}: content and output must be strings")
        styles = [styles] if isinstance(styles, str) else styles
        if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
            raise UsageError(f"{where}: style must be a path or a list of paths")
        rows.append(Row(where, content, styles, output, entry, path.parent, text=False))
    if not rows:
        raise UsageError(f"--manifest {path}: no [[job]] in it")
    return rows


def _csv_rows(path: Path) -> list[Row]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            lines = [(reader.line_num, line) for line in reader]
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"--manifest {path}: not a readable CSV file ({e})") from None
    missing = [name for name in ("content", "style") if name not in header]
    if missing:
        raise UsageError(f"--manifest {path}: the header row needs the columns content and style "
                         f"(missing: {', '.join(missing)}); other columns are output and options of `stylize run`")
    rows = []
    for line_number, line in lines:
        where = f"{path}, line {line_number}"
        if None in line:
            raise UsageError(f"{where}: more cells than the header has columns")
        entry = {key.strip(): value.strip() for key, value in line.items()
                 if key is not None and value is not None and value.strip()}
        if not entry:
            continue  # a blank line
        content, styles, output = _take(entry, where)
        rows.append(Row(where, content, [s.strip() for s in styles.split(CSV_LIST) if s.strip()], output, entry,
                        path.parent, text=True))
    if not rows:
        raise UsageError(f"--manifest {path}: no job in it")
    return rows


def _take(entry: dict, where: str) -> tuple[Any, Any, Any]:
    """Pop content, style(s) and output (optional) from a manifest entry."""
    if "styles" in entry and "style" not in entry:
        entry["style"] = entry.pop("styles")
    missing = [key for key in ("content", "style") if not entry.get(key)]
    if missing:
        raise UsageError(f"{where}: no {' and no '.join(missing)}")
    return entry.pop("content"), entry.pop("style"), entry.pop("output", None)


def resolve(path: str, folder: Path) -> str:
    """``path`` from a manifest, relative to the manifest's folder unless absolute."""
    return str(folder / os.path.expanduser(path))


def absolute(path: str | os.PathLike) -> str:
    """Workers may run in another folder: every path a job reads or writes is absolute."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))
