"""Progress of a run on the terminal: one consumer of the Job's events.

Nothing is printed before the network is loaded (the plan line, with the
expected time and memory, comes then), so an error while loading the
network or the weights stays the only line on stderr. On a terminal it
draws click's progress bar; otherwise (CI logs, pipes) it prints a line at
every tenth of the run, since a bar would only print its label there. The
line shows each term's share of the loss, so that a user can balance the
weights, and the Job's ETA, which knows that finer levels cost more.
"""
from __future__ import annotations

import sys

import click

from stylize.core.run import events, plan_text
from stylize.core.run.plan_text import duration


def describe(step: events.Step) -> str:
    """``loss 1.2e+11 (content 3.1e+10, gram 8.9e+10), scale 2/3, eta 1 min 05 s``."""
    terms = ", ".join(f"{name} {value:.2g}" for name, value in step.terms.items())
    level = f", scale {step.level + 1}/{step.levels}" if step.levels > 1 else ""
    eta = f", eta {duration(step.eta)}" if step.eta is not None else ""
    stopped = ", stopped improving" if step.converged else ""
    return f"loss {step.loss:.4g}{f' ({terms})' if terms else ''}{level}{stopped}{eta}"


def plan_line(started: events.Started) -> str:
    """``planned: 3 scales (128, 256, 512 px), 512 iterations; expected about 9 min 10 s, memory about 1.3 GiB``."""
    return plan_text.summary(started.plan, started.first_step)


class Progress:
    """Context manager; the object itself is the event handler to pass to ``Job.run``."""

    def __init__(self, quiet: bool, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.bar = None
        self.last: events.Step | None = None
        self.total = self.start = self.next_line = 0
        #: Wall time of the run, from its Finished event.
        self.seconds = 0.0

    def __enter__(self):
        return self

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.Started):
            self.total, self.start = event.plan.iterations, event.first_step
            self.next_line = event.first_step
            if not self.quiet:
                click.echo(plan_line(event), file=self.stream)
        elif isinstance(event, events.Finished):
            self.seconds = event.seconds
        elif isinstance(event, events.Step) and not self.quiet:
            self.update(event)

    def _describe(self, _item=None) -> str | None:
        return None if self.last is None else describe(self.last)

    def update(self, step: events.Step) -> None:
        self.last = step
        if self.stream.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=self.total, label="stylizing", file=self.stream,
                                             show_pos=True, show_eta=False, item_show_func=self._describe)
                self.bar.__enter__()
                self.bar.update(self.start)
            self.bar.update(step.step - self.bar.pos)
        elif step.step >= self.next_line or step.step == self.total or step.converged:
            self.next_line = step.step + max(1, self.total // 10)
            click.echo(f"stylizing: {step.step}/{self.total} {describe(step)}", file=self.stream)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
