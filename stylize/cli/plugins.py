"""``stylize plugins``: every installed backend, loss, optimizer and start, without importing them.

Listing reads only metadata: entry points and distributions from the
installed packages' metadata, and each description (the first line of the
plugin class's docstring) from the plugin's source file, parsed with ``ast``
rather than imported (``stylize.core.plugins.describe``). So the listing is
fast, shows plugins whose imports would fail or be slow (pycaffe, scipy), and
cannot be broken by them. ``--check`` imports every plugin and checks it
against its contract, as ``stylize run`` would; ``--options`` does the same
and lists the options each plugin declares. Entry points registered under a
group that only looks like stylize's (``stylize.loss``) follow the table,
with the group stylize reads.
"""
from __future__ import annotations

from typing import Any

import click

HEADINGS = {"backend": "backends", "loss": "losses", "optimizer": "optimizers", "start": "starts"}


@click.command("plugins")
@click.option("--check", is_flag=True,
              help="Also import every plugin and check it against its contract (slower); "
                   "exits with status 5 if any fails.")
@click.option("--options", "show_options", is_flag=True,
              help="Also list the options each plugin declares (name, type, default, help), "
                   "as --set NAME.KEY=VALUE takes them; imports every plugin, as --check does.")
def plugins_command(check: bool, show_options: bool) -> None:
    """List installed backends, losses, optimizers and starts: name, package, version, description.

    Names are what `stylize run --backend/--loss/--optimizer/--init` take. Plugins
    are not imported unless --check or --options is given.
    """
    from stylize.core import plugins
    from stylize.core.errors import PluginError, StylizeError

    check = check or show_options
    registered = plugins.registrations()
    counts: dict[tuple[str, str], int] = {}
    for reg in registered:
        counts[reg.group, reg.name] = counts.get((reg.group, reg.name), 0) + 1
    packages = {reg: f"{reg.dist} {reg.version}" for reg in registered}
    name_width = max((len(reg.name) for reg in registered), default=0)
    package_width = max((len(text) for text in packages.values()), default=0)
    failures = 0
    for group, kind in plugins.KIND.items():
        rows = [reg for reg in registered if reg.group == group]
        click.echo(f"{HEADINGS.get(kind, kind)} ({group}):")
        if not rows:
            click.echo("  (none installed)")
        for reg in rows:
            description = plugins.describe(reg.value)
            problem, cls = None, None
            if counts[group, reg.name] > 1:
                problem = "CONFLICT: registered by more than one package; uninstall one"
            status = ""
            if check:
                try:
                    cls = plugins.load(group, reg.name)
                    description = description or plugins.first_line(cls.__doc__)
                    status = "ok"
                except StylizeError as e:
                    status, problem, failures = "FAILED", str(e), failures + 1
                status = f"{status:6}  "
            description = description or ("(no description)" if check else
                                          "(no description in the source; try --check)")
            click.echo(f"  {reg.name:{name_width}}  {status}{packages[reg]:{package_width}}  "
                       f"{description}".rstrip())
            if problem:
                click.echo(f"  {'':{name_width}}  {problem}")
            if show_options and cls is not None:
                for line in option_lines(cls, kind):
                    click.echo(f"  {'':{name_width}}    {line}")
    astray = plugins.misregistrations()
    if astray:
        click.echo("not loaded (registered under a group stylize does not read):")
        for reg, _ in astray:
            click.echo(f"  {reg.name}  {reg.hint()}")
    if failures:
        raise PluginError(f"{failures} plugin(s) failed to load or check; see above")


def option_lines(cls: type, kind: str) -> list[str]:
    """The options ``cls`` declares, one aligned line each: name, type, default, help.

    A loss's own options come first, then the ``weight`` and ``layers``
    every loss takes. A plugin that declares nothing gets its options unchecked.
    """
    from stylize.core.contracts.options import LOSS_OPTIONS, declared

    own = declared(cls)
    options = [*(own or {}).values(), *(LOSS_OPTIONS if kind == "loss" else ())]
    defaults = {}
    if kind == "loss":  # what the pipeline uses when weight is not given
        role = getattr(cls, "role", None)
        defaults["weight"] = {"content": "1", "style": "--ratio"}.get(role, _shown(cls.default_weight))
    cells = [(o.name, _type_name(o), defaults.get(o.name, _shown(o.default)), o.help) for o in options]
    widths = [max((len(row[i]) for row in cells), default=0) for i in range(3)]
    lines = [f"{name:{widths[0]}}  {type_:{widths[1]}}  {default:{widths[2]}}  {text}".rstrip()
             for name, type_, default, text in cells]
    if own is None:
        lines.append("(other options not declared: passed to the plugin unchecked)" if lines
                     else "(options not declared: passed to the plugin unchecked)")
    elif not lines:
        lines.append("(no options)")
    return lines


def _type_name(option) -> str:
    if option.choices is not None:
        return "|".join(map(str, option.choices))
    if option.path:
        return "path"
    return {float: "number", int: "integer", bool: "bool", str: "text"}.get(
        option.type, getattr(option.type, "__name__", str(option.type)))


def _shown(value: Any) -> str:
    """A default as the user would write it after ``--set NAME.KEY=``; "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
