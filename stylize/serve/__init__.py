"""``stylize serve``: a local web app over the Job API, with a live preview of every run.

The web app (``app``: aiohttp, run on its own thread by ``server``) serves
one plain HTML/CSS/JS page (``static/``) and a JSON API, each request passed
by ``guard`` first; ``stream`` sends a job's events (server-sent events);
``jobs`` queues the runs (one at a time) and ``record`` keeps each one's
events for pages that reload; ``room`` prunes the work folder; ``uploads``
checks uploaded images as the command line checks its inputs; ``forms``
builds the page's forms from the installed plugins' declared options and
checks what the page sends; ``gallery`` reads results' settings back from
their PNG metadata; ``storage`` keeps the work folder under its limit;
``privacy`` keeps server paths out of what clients receive; ``preview``
serves the page for one ``stylize run --preview``. Importing this package imports no web framework: the server is
loaded when one is started.
"""
from .preview import Preview, preview_server

__all__ = ["Preview", "ServeConfig", "Server", "preview_server"]


def __getattr__(name: str):
    if name == "Server":
        from .server import Server
        return Server
    if name == "ServeConfig":
        from .config import ServeConfig
        return ServeConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
