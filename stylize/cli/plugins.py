"""``stylize plugins``: every installed backend, loss and optimizer, without importing them.

Listing reads only metadata: entry points and distributions from the
installed packages' metadata, and each description (the first line of the
plugin class's docstring) from the plugin's source file, parsed with ``ast``
rather than imported (``stylize.core.plugins.describe``). So the listing is
fast, shows plugins whose imports would fail or be slow (pycaffe, scipy), and
cannot be broken by them. ``--check`` imports every plugin and checks it
against its contract, as ``stylize run`` would.
"""
from __future__ import annotations

import click

HEADINGS = {"backend": "backends", "loss": "losses", "optimizer": "optimizers"}


@click.command("plugins")
@click.option("--check", is_flag=True,
              help="Also import every plugin and check it against its contract (slower); "
                   "exits with status 5 if any fails.")
def plugins_command(check: bool) -> None:
    """List installed backends, losses and optimizers: name, package, version, description.

    Names are what `stylize run --backend/--loss/--optimizer` take. Plugins
    are not imported unless --check is given.
    """
    from stylize.core import plugins
    from stylize.core.errors import PluginError, StylizeError

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
            problem = None
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
    if failures:
        raise PluginError(f"{failures} plugin(s) failed to load or check; see above")
