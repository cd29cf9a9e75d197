"""``stylize run``'s options as every job's defaults, and a manifest job's own options over them.

One code path with ``stylize run``: the batch command carries copies of
run's click options (so ``--help``, types, ``STYLIZE_*`` variables and
``--config`` files behave the same), and each job's ``Settings`` come from
``settings_from_options`` on a click context of the run command whose
parameter sources say what the user gave: the job's own options count as
given on the command line, so a ``--preset`` fills in only what neither the
job nor the batch's command line set, exactly as it would for
``stylize run`` with the job's options added to the command.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any, Mapping

import click
from click.core import ParameterSource

from stylize.batch.jobs import CSV_LIST, BatchJob, Row, absolute, resolve
from stylize.core.errors import UsageError
from stylize.core.request.fields import BATCH, RUN, Setting, described
from stylize.core.request.initial import NAMED as NAMED_INITS
from stylize.core.request.settings import Settings

from . import run as run_cli
from .backend_options import BACKEND_OPTIONS
from .checks import check_conflicts
from .config import PLUGIN_OPTIONS, checked_value, option_name, plugin_items
from .setting_options import option_for, settings_from_options

#: Options of ``stylize run`` that are not settings but a job's files: every job takes them too.
FILE_OPTIONS = ("content_mask", "style_masks", "save_every", "save_dir", "checkpoint_every")
#: Run's options that the batch command has for itself (its cluster's --scheduler): in a manifest they are the
#: job's setting, on the batch's command line the batch's own.
BATCH_OWN = ("scheduler",)
#: What --threads means in a batch (run's help speaks of one run on a whole machine).
THREADS_HELP = ("BLAS threads of each job (default: the cores a worker declares as its `cores` resource; "
                "on the local cluster, the machine's cores shared out among its workers).")


def run_params() -> list[click.Parameter]:
    """The parameters of ``stylize run`` that a batch takes as every job's defaults (and ``--config``).

    Run's function names the parameters that are not settings and passes
    the settings on as ``**given``: a batch takes those, and the file
    options; the others (the content, the output, --resume, -q, --force,
    --preview ...) concern one run, which the batch command does its own way.
    Settings fields that declare batch but not run (none today) join as run would make them.
    """
    named = {name for name, p in inspect.signature(run_cli.run.callback).parameters.items()
             if p.kind is not p.VAR_KEYWORD}
    fields = described(Settings)
    params = [param for param in run_cli.run.params
              if (not param.expose_value or param.name in FILE_OPTIONS or param.name not in named)
              and BATCH in fields.get(param.name, (BATCH_TAKES, None))[0].drivers]
    return params + [option_for(name, about, default) for name, (about, default) in fields.items()
                     if BATCH in about.drivers and RUN not in about.drivers]


#: What a run parameter that is no Settings field (--preset, --set, the file options) declares: batch takes it.
BATCH_TAKES = Setting("", drivers=frozenset({BATCH}))


def with_run_options(command: click.Command) -> click.Command:
    """Add copies of ``stylize run``'s options to ``command`` (decorator; under ``configurable``).

    One the batch command has itself (``BATCH_OWN``) stays a manifest key only."""
    for param in run_params():
        if param.name in BATCH_OWN:
            continue
        param = copy.copy(param)
        if param.name == "threads":
            param.help = THREADS_HELP
        command.params.append(param)
    return command


class RunOptions:
    """The batch command's values of run's options, from which each job's settings are made."""

    def __init__(self, ctx: click.Context, values: Mapping[str, Any]):
        self.params = {param.name: param for param in run_params() if param.expose_value}
        # The batch's own --scheduler is no job's value: a job's is the default unless its manifest row gives one.
        self.values = {name: param.default if name in BATCH_OWN else values[name]
                       for name, param in self.params.items()}
        self.sources = {name: ParameterSource.DEFAULT if name in BATCH_OWN else
                        ctx.get_parameter_source(name) or ParameterSource.DEFAULT for name in self.params}
        #: ``--set`` items of the config file, the environment and the command line, in that order.
        self.plugin_items = plugin_items(ctx, values[PLUGIN_OPTIONS])
        self.by_key: dict[str, click.Parameter] = {}
        for param in self.params.values():
            key = option_name(param)
            self.by_key[key] = self.by_key[key.replace("-", "_")] = param
        self.by_key["set"] = self.params[PLUGIN_OPTIONS]
        self._context = click.Context(run_cli.run)

    def job(self, content: str, styles: list[str], output: str, own: Mapping[str, Any] | None = None) -> BatchJob:
        """The job writing ``output``, with ``own`` (parameter name -> value) over the batch's options."""
        values, sources, items = dict(self.values), dict(self.sources), list(self.plugin_items)
        for name, value in (own or {}).items():
            if name == PLUGIN_OPTIONS:
                items += value
            else:
                values[name], sources[name] = value, ParameterSource.COMMANDLINE
        values = {name: _absolute_paths(self.params[name], value) for name, value in values.items()}
        values[PLUGIN_OPTIONS] = items
        ctx = click.Context(run_cli.run)
        for name, source in sources.items():
            ctx.set_parameter_source(name, source)
        ctx.set_parameter_source(PLUGIN_OPTIONS, ParameterSource.DEFAULT)  # items above: nothing to re-read
        files = {name: values.pop(name) for name in FILE_OPTIONS}
        files["style_masks"] = list(files["style_masks"]) or None
        backend_given = {name: values.pop(name) for name in list(values) if name in BACKEND_OPTIONS}
        check_conflicts(output, [content, *styles, files["content_mask"], *(files["style_masks"] or ()),
                                 values["init"]])
        settings = settings_from_options(ctx, values, backend_given)
        return BatchJob(content, styles, output, settings, **files)

    def row_options(self, row: Row) -> dict[str, Any]:
        """A manifest row's own options, by parameter name, checked against run's option types."""
        own = {}
        for key, value in row.options.items():
            param = self.by_key.get(key)
            if param is None:
                known = sorted({option_name(p) for p in self.params.values()} | {"set"})
                refused = " (not an option of one job of a batch)" if key.replace("_", "-") in \
                    {option_name(p) for p in run_cli.run.params} else ""
                raise UsageError(f"{row.where}: unknown key {key!r}{refused}; keys are content, style, output "
                                 f"and these long options of `stylize run`: {', '.join(known)}")
            value = self._text_value(param, key, value, row.where) if row.text else \
                checked_value(self._context, param, key, value, row.where)
            if param.name == PLUGIN_OPTIONS:
                value = [value] if isinstance(value, str) else list(value)
            elif param.multiple:
                value = tuple([value] if isinstance(value, str) else value)
            own[param.name] = _relative_to(param, value, row)
        return own

    def _text_value(self, param: click.Parameter, key: str, text: str, where: str) -> Any:
        """A CSV cell as the option's type (several values separated by ';')."""
        value: Any = [part.strip() for part in text.split(CSV_LIST) if part.strip()] if param.multiple else text
        if param.name == PLUGIN_OPTIONS:
            return value
        try:
            return param.type_cast_value(self._context, value)
        except click.BadParameter as e:
            raise UsageError(f"{where}: {key} = {text!r}: {e.message}") from None


def _is_path(param: click.Parameter) -> bool:
    return isinstance(param.type, click.Path) or param.name == "init"


def _relative_to(param: click.Parameter, value: Any, row: Row) -> Any:
    """Paths in a manifest are relative to its folder."""
    if not _is_path(param) or value is None:
        return value
    if param.name == "init" and value in NAMED_INITS:
        return value
    if param.multiple:
        return tuple(resolve(v, row.folder) for v in value)
    return resolve(value, row.folder)


def _absolute_paths(param: click.Parameter, value: Any) -> Any:
    if not _is_path(param) or value is None or (param.name == "init" and value in NAMED_INITS):
        return value
    return tuple(absolute(v) for v in value) if param.multiple else absolute(value)
