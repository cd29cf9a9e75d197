"""``stylize batch``: many contents and styles on a Dask cluster (local by default), resumable.

A thin layer over ``stylize.batch``: jobs from globs or a manifest with
``stylize run``'s options as their defaults (``stylize.cli.batch_options``),
planned, run, and shown as one progress line, a summary table and a JSON
report.
"""
from __future__ import annotations

import sys
import time

import click

from stylize.batch import jobs as batch_jobs
from stylize.batch.events import CANCELLED, DONE, FAILED, BatchInterrupted, JobEnded, JobStarted
from stylize.batch.plan import FAILED as REFUSED
from stylize.batch.plan import FINISHED, RESUME, local_layout, plan
from stylize.batch.report import REPORT_NAME, Tracker, report_path, summary_rows, table, totals, write_report
from stylize.batch.runner import RETRIES, Batch
from stylize.core.run import plan_text
from stylize.core.errors import StylizeError, UsageError
from stylize.core.planning.memory import format_bytes

from .batch_options import RunOptions, with_run_options
from .config import configurable
from .progress import duration

#: Exit status when a job failed (each job's own code is in the report).
FAILED_EXIT = 1
INTERRUPTED_EXIT = 130
#: Seconds between two progress lines when stderr is not a terminal.
LOG_EVERY = 10.0


@configurable
@with_run_options  # every option of `stylize run`, as the default of every job
@click.command()
@click.option("-c", "--content", "contents", multiple=True, metavar="GLOB",
              help="Content images: a path or a quoted glob ('photos/*.jpg'), repeatable. Every content "
                   "is stylized with every -s style.")
@click.option("-s", "--style", "styles", multiple=True, metavar="GLOB",
              help="Style images: a path or a quoted glob, repeatable; each makes its own jobs (blend "
                   "several styles in one job with a --manifest).")
@click.option("-m", "--manifest", type=click.Path(), default=None, metavar="FILE",
              help="Jobs from a TOML ([[job]] tables) or CSV file instead of -c/-s: content, style (several: "
                   "a list, or separated by ';' in CSV), output, and any option of `stylize run` for that "
                   "job alone. Relative paths are relative to the file's folder.")
@click.option("-o", "--output", "pattern", default=None, metavar="PATTERN",
              help="Output of each job: {content}, {style} (their names without extension) and {n} (the "
                   "job's number) are filled in, e.g. 'out/{content}-{style}.png'. A manifest's own "
                   "output wins.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on the Dask cluster of this scheduler (tcp://host:8786, started with `dask "
                   "scheduler`) instead of a local cluster. Workers that declare `--resources "
                   "cores=N,memory=BYTES` get jobs only as their cores and memory allow; a job whose planned "
                   "peak is above every worker's memory is refused before it is sent.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster, one job each at a time (default: as many as "
                   "the cores, the jobs and their memory estimates allow).")
@click.option("--retries", type=click.IntRange(min=0), default=RETRIES, show_default=True,
              help="How often the local cluster runs a job again after its worker died (it resumes from "
                   "its checkpoint). A --scheduler keeps its own setting.")
@click.option("--report", type=click.Path(), default=None, metavar="FILE.json",
              help=f"Write the JSON report there (default: {REPORT_NAME} in the folder holding the outputs).")
@click.option("--dry-run", is_flag=True,
              help="Print the jobs with their size, memory and time from their run plans; run nothing.")
@click.option("-f", "--force", is_flag=True,
              help="Run finished jobs again and overwrite their outputs. Without it a rerun skips finished "
                   "outputs and resumes unfinished jobs from their checkpoints.")
@click.option("-q", "--quiet", is_flag=True, help="No progress: only the summary table.")
@click.pass_context
def batch(ctx, contents, styles, manifest, pattern, scheduler, workers, retries, report, dry_run, force, quiet,
          **given):
    """Stylize many CONTENT x STYLE pairs (or a manifest's jobs) on a Dask cluster.

    Runs on a local Dask cluster sized to this machine, or on a cluster with
    --scheduler. Each job runs in a process of its own and writes a
    checkpoint every --checkpoint-every iterations next to its output; a
    job whose worker dies is run again from its checkpoint. Rerunning the
    same command skips finished outputs and resumes the others; Ctrl-C
    stops the jobs and keeps their checkpoints. The exit status is 1 when
    any job failed (the summary and the JSON report say why).
    """
    options = RunOptions(ctx, given)
    jobs = _jobs(options, contents, styles, manifest, pattern)
    batch_jobs.check_outputs(jobs)
    if not quiet:
        click.echo(f"planning {len(jobs)} job{'s' if len(jobs) != 1 else ''}...", err=True)
    planned = plan(jobs, force=force)
    if dry_run:
        _dry_run(planned, scheduler, workers)
        sys.exit(FAILED_EXIT if any(p.state == REFUSED for p in planned) else 0)
    started = time.monotonic()
    interrupted = False
    with Batch(planned, scheduler=scheduler, workers=workers, retries=retries, force=force) as runner:
        cluster = _cluster(runner)
        if runner.needed and not quiet:
            click.echo(cluster["description"], err=True)
            click.echo(f"dashboard: {runner.dashboard_link or 'none (Dask serves one where bokeh is installed)'}",
                       err=True)
        display = _Display(Tracker(planned, runner.slots), quiet)
        try:
            results = runner.run(display)
        except BatchInterrupted as e:
            results, interrupted = e.results, True
        display.close()
    path = write_report(report or report_path(results), results, seconds=time.monotonic() - started,
                        cluster=cluster, interrupted=interrupted)
    click.echo(table(("job", "status", "seconds", "output or error"), summary_rows(results)))
    counts = totals(results)
    click.echo(", ".join(f"{n} {status}" for status, n in counts.items() if n) + f"; report: {path}", err=True)
    if interrupted:
        click.echo("stylize: interrupted; checkpoints kept: the same command resumes the batch", err=True)
        sys.exit(INTERRUPTED_EXIT)
    if counts[FAILED]:
        sys.exit(FAILED_EXIT)


def _jobs(options: RunOptions, contents, styles, manifest, pattern) -> list[batch_jobs.BatchJob]:
    if pattern is not None:
        batch_jobs.check_pattern(pattern)
    if manifest is not None:
        if contents or styles:
            raise UsageError("give either -c/-s globs or --manifest, not both")
        jobs = []
        for number, row in enumerate(batch_jobs.read_manifest(manifest), 1):
            content = batch_jobs.resolve(row.content, row.folder)
            styles = [batch_jobs.resolve(style, row.folder) for style in row.styles]
            if row.output is not None:
                output = batch_jobs.resolve(row.output, row.folder)
            elif pattern is not None:
                output = batch_jobs.output_for(pattern, content, styles, number)
            else:
                raise UsageError(f"{row.where}: no output; give one in the manifest or a pattern with -o")
            try:
                jobs.append(options.job(content, styles, output, options.row_options(row)))
            except StylizeError as e:
                e.args = (f"{row.where}: {e}",) if not str(e).startswith(row.where) else e.args
                raise
        return jobs
    if not contents or not styles:
        raise UsageError("give content and style images (-c 'photos/*.jpg' -s 'styles/*.jpg') or --manifest FILE")
    if pattern is None:
        raise UsageError("give the outputs' pattern, e.g. -o 'out/{content}-{style}.png'")
    pairs = batch_jobs.cross_product(batch_jobs.expand(contents, "-c"), batch_jobs.expand(styles, "-s"))
    return [options.job(content, styles, batch_jobs.output_for(pattern, content, styles, number))
            for number, (content, styles) in enumerate(pairs, 1)]


def _dry_run(planned, scheduler, workers) -> None:
    rows = []
    for p in planned:
        size = iterations = memory = seconds = ""
        if p.shape is not None:
            size = f"{p.shape[1]}x{p.shape[0]}"
            iterations = f"{p.first_step}/{p.iterations}" if p.first_step else str(p.iterations)
            memory = format_bytes(p.memory_bytes) if p.memory_bytes else "?"
            seconds = duration(p.seconds) if p.seconds is not None else "?"
        state = {FINISHED: "finished: skipped", RESUME: f"resumes at {p.first_step}",
                 REFUSED: f"error: {p.error}"}.get(p.state, "runs")
        rows.append((f"{p.number} {p.job.name}", p.job.output, size, iterations, memory, seconds, state))
    click.echo(table(("job", "output", "size", "iterations", "memory", "time", "state"), rows))
    for p in planned:  # each plan as `stylize run` says it (plan_text), below the table
        if p.runs and p.estimate is not None and p.estimate.plan is not None:
            click.echo(f"{p.number} {p.job.name}: {plan_text.summary(p.estimate.plan, p.first_step)}", err=True)
    if not any(p.runs for p in planned):
        click.echo("nothing to run", err=True)
    elif scheduler is not None:
        click.echo(f"would run on the Dask cluster of {scheduler}", err=True)
    else:
        layout = local_layout(planned, workers=workers)
        click.echo(f"would run on a local Dask cluster of {_workers(layout.workers, layout.threads)} "
                   f"({layout.reason}); times are the plans' estimates (fixed costs not included)", err=True)


def _workers(count: int, threads: int) -> str:
    return f"{count} worker{'s' if count != 1 else ''} x {threads} thread{'s' if threads != 1 else ''}"


def _cluster(runner: Batch) -> dict:
    """What the report and the first line say about the cluster."""
    if not runner.needed:
        return {"description": "nothing to run"}
    if runner.layout is not None:
        description = (f"local Dask cluster at {runner.address}: {_workers(runner.layout.workers, runner.layout.threads)}"
                       f" ({runner.layout.reason})")
    else:
        threads = f"{runner.threads} threads each" if runner.threads else "threads from each worker's cores"
        description = f"Dask cluster at {runner.address}: {runner.slots} jobs at once, {threads}"
    return {"description": description, "scheduler": runner.address, "slots": runner.slots,
            "threads": runner.threads, "local": runner.layout is not None}


class _Display:
    """The batch's progress line (redrawn on a terminal, every LOG_EVERY seconds in a log) and a line per job."""

    def __init__(self, tracker: Tracker, quiet: bool, stream=None):
        self.tracker, self.quiet = tracker, quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.next_log = 0.0
        self.drawn = False

    def __call__(self, event) -> None:
        self.tracker(event)
        if self.quiet:
            return
        line = self._job_line(event)
        if line is not None:
            self._print(line)
        if self.tty:
            self._draw()
        elif line is not None or time.monotonic() >= self.next_log:
            self.next_log = time.monotonic() + LOG_EVERY
            self._print(self.progress())

    def _job_line(self, event) -> str | None:
        number = event.number
        name = f"job {number} ({self.tracker.planned[number].job.name})"
        if isinstance(event, JobStarted) and event.attempt > 1:
            return (f"{name}: its worker died; attempt {event.attempt} on {event.worker}, "
                    f"resuming at {event.first_step}/{event.total}")
        if isinstance(event, JobEnded):
            result = event.result
            if result.status == DONE:
                return f"{name}: done in {duration(result.seconds or 0)}: {result.output}"
            if result.status == FAILED:
                return f"{name}: failed: {result.error}"
            if result.status == CANCELLED:
                return f"{name}: cancelled"
        return None
        return None

    def progress(self) -> str:
        t = self.tracker
        eta = t.eta()
        parts = [f"{t.count(DONE)}/{len(t.planned)} done", f"{len(t.running)} running", f"{t.queued} queued"]
        for status in ("skipped", "failed", "cancelled"):
            if t.count(status):
                parts.append(f"{t.count(status)} {status}")
        left = len(t.planned) - len(t.ended)
        return "batch: " + ", ".join(parts) + (f", eta {duration(eta)}" if eta is not None and left else "")

    def _print(self, line: str) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[K")
            self.drawn = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        self.stream.write("\r\x1b[K" + self.progress())
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
