"""Progress reporting for long runs: a bar on a terminal, periodic lines in a log."""
from __future__ import annotations

import sys
import time

import click


class Progress:
    """Context manager yielding the pipeline callback: iteration, loss, level and ETA.

    Nothing is printed before the first iteration, so an error while loading
    the network or the weights stays the only line on stderr. On a terminal
    it draws click's progress bar; otherwise (CI logs, pipes) it prints a line
    at every tenth of the run, since a bar would only print its label there.
    """

    def __init__(self, total: int, quiet: bool, stream=None, start: int = 0):
        #: Iterations done before this process (a resumed run): not counted in the ETA.
        self.total, self.quiet, self.start = total, quiet, start
        self.stream = stream or sys.stderr
        self.bar = None
        self.last = None
        self.started = None
        self.next_line = start

    def __enter__(self):
        return (lambda result: None) if self.quiet else self.update

    def _describe(self, _item=None) -> str | None:
        if self.last is None:
            return None
        level = f", scale {self.last.level + 1}/{self.last.levels}" if self.last.levels > 1 else ""
        return f"loss {self.last.value:.4g}{level}"

    def update(self, result) -> None:
        self.last = result
        if self.started is None:
            self.started = time.monotonic()
        if self.stream.isatty():
            if self.bar is None:
                self.bar = click.progressbar(length=self.total, label="stylizing", file=self.stream,
                                             show_pos=True, show_eta=True, item_show_func=self._describe)
                self.bar.__enter__()
                self.bar.update(self.start)
            self.bar.update(result.step - self.bar.pos)
        elif result.step >= self.next_line or result.step == self.total:
            self.next_line = result.step + max(1, self.total // 10)
            elapsed = time.monotonic() - self.started
            eta = elapsed / max(1, result.step - self.start) * (self.total - result.step)
            click.echo(f"stylizing: {result.step}/{self.total} {self._describe()}, "
                       f"eta {eta:.0f} s", file=self.stream)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
