"""``stylize serve``: the web app (``stylize.serve``), started from the command line.

Nothing heavy is imported until the command runs, so ``stylize --help`` stays fast.
"""
from __future__ import annotations

import click

DEFAULT_PORT = 8765  # stylize.serve.config.DEFAULT_PORT, repeated to keep --help free of imports


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) is reachable "
                   "from other machines and needs a token: one is generated and printed in the URL "
                   "(or give --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--token", envvar="STYLIZE_SERVE_TOKEN", default=None, metavar="TEXT",
              help="Require this token on every request (at least 16 characters); also read from "
                   "STYLIZE_SERVE_TOKEN, which keeps it out of the process list. Generated for a "
                   "non-loopback --host when not given.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--work", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Work folder for uploads, results, checkpoints and job records "
                   "(default: $STYLIZE_HOME/serve, i.e. ~/.cache/stylize/serve). Restarting on the same "
                   "folder shows earlier results and resumes unfinished jobs.")
@click.option("--set", "settings_", multiple=True, metavar="PLUGIN.KEY=VALUE",
              help="A plugin option fixed for every job, overriding the page; repeatable. Options that "
                   "are file paths (caffe.prototxt, caffe.weights...) can only be set this way.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="BLAS threads of each run (default: OpenBLAS's own choice).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A Dask scheduler (e.g. tcp://10.0.0.5:8786) for every job: the tiles of each tiled scale run "
                   "on its workers (stylize run --scheduler; docs/cluster.md). The page cannot set one.")
@click.option("--preview-every", type=click.FloatRange(min=0), default=0.25, show_default=True,
              metavar="SECONDS", help="Time between two live preview images of a run.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=50, show_default=True,
              help="Largest upload (request body), in MiB.")
@click.option("--max-length", type=click.IntRange(min=16), default=2048, show_default=True,
              help="Largest --length a page may ask for.")
@click.option("--max-iterations", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most iterations a page may ask for.")
@click.option("--max-storage", default=None, metavar="SIZE",
              help="Most the work folder may hold: 500M, 2G, 1.5GiB, or a share of the free disk space "
                   "such as 30% (default: 50%, i.e. half of its free space plus what it holds). The oldest "
                   "uploads and ended jobs that no queued or running job needs are deleted to stay under "
                   "it; the page shows the limit and the usage.")
def serve(host, port, token, open_browser, work, settings_, threads, preview_every, max_upload_mb, max_length,
          max_iterations, max_storage, scheduler):
    """Start the web app: upload images, run jobs with a live preview, browse and compare results.

    Prints the page's URL and serves until Ctrl-C, which cancels a running
    job after its current iteration (its checkpoint is kept, to resume from
    the page after the next start).
    """
    import signal
    import threading
    import webbrowser
    from pathlib import Path

    from stylize.core.errors import UsageError
    from stylize.serve.config import ServeConfig, is_loopback, new_token
    from stylize.serve.forms import check_fixed
    from stylize.serve.server import Server

    from .setting_options import parse_plugin_options

    if token is not None and not token.strip():
        raise UsageError("--token: empty; give at least 16 characters, or leave it out")
    if token is None and not is_loopback(host):
        token = new_token()
    config = ServeConfig(host=host, port=port, token=token, fixed_options=check_fixed(parse_plugin_options(settings_)),
                         threads=threads, scheduler=scheduler, preview_every=preview_every,
                         max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_length=max_length,
                         max_iterations=max_iterations)
    if work is not None:
        config.work = Path(work)
    if max_storage is not None:
        from stylize.serve.storage import parse_size
        config.max_storage_bytes = parse_size(max_storage, config.work)
    stop = threading.Event()  # set by Ctrl-C or SIGTERM, from before the URL is printed
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = Server(config).start()
    click.echo(f"stylize serve: {server.url}")
    click.echo(f"work folder: {server.web.work.root} (at most {server.web.storage.limit / 2**20:,.0f} MiB); "
               "Ctrl-C stops (a running job is cancelled and keeps "
               "its checkpoint)", err=True)
    if not is_loopback(host):
        click.echo("listening beyond this machine: from another one, use this machine's address in the URL; "
                   "share it (with its token) only with people who may run jobs here", err=True)
    if open_browser:
        webbrowser.open(server.url)
    while not stop.wait(1.0):
        pass
    click.echo("stylize serve: stopping (cancelling the running job, if any)", err=True)
    server.stop()
