"""No server path in what a client receives: messages name files relative to the work folder, results name uploads by id.

A server shared on a network must not tell whoever holds its token where
its home folder is or how its disk is laid out. Two places carried paths:
messages (a missing model's path, an upload's path in a decoding error) and
the PNG text of results (the inputs' paths, file options in the settings).
``Scrubber.text`` rewrites a message; ``public_metadata`` rewrites a Job's
PNG text before it writes anything.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Callable

from stylize.core.request.settings import Settings

from .work import UPLOAD_ID, WorkFolder


class Scrubber:
    """Rewrites text for a client: upload paths become their labels, other work-folder paths become relative,
    the home folder becomes ``~``."""

    def __init__(self, work: WorkFolder, label_of: Callable[[Path], str], home: str | None = None):
        self.work, self.label_of = work, label_of
        self.home = str(Path(home or os.path.expanduser("~")).resolve())
        root = re.escape(str(work.root))
        self._upload = re.compile(f"{root}/uploads/([0-9a-f]{{32}}\\.[a-z]+)")
        self._inside = re.compile(f"{root}/")
        self._root = re.compile(f"{root}(?![\\w.-])")
        self._home = re.compile(f"{re.escape(self.home)}(?![\\w.-])") if self.home not in ("/", "") else None

    def text(self, message: str) -> str:
        message = self._upload.sub(lambda m: self.label_of(self.work.uploads / m.group(1)), message)
        message = self._root.sub("the work folder", self._inside.sub("", message))
        return self._home.sub("~", message) if self._home is not None else message


def public_metadata(metadata: dict[str, str], settings: Settings, content: Path, styles: list[Path]) -> dict[str, str]:
    """A Job's PNG text with its inputs named by upload id and no absolute path in its settings."""
    return {**metadata, "stylize:content": _public_name(content),
            "stylize:style": ", ".join(_public_name(style) for style in styles),
            "stylize:settings": public_settings(settings).to_json()}


def public_settings(settings: Settings) -> Settings:
    """``settings`` with every absolute path (an init upload, a server-fixed file option) cut to its name."""
    options = {plugin: {key: _public_name(value) if _is_path(value) else value for key, value in values.items()}
               for plugin, values in settings.options.items()}
    init = _public_name(settings.init) if _is_path(settings.init) else settings.init
    return dataclasses.replace(settings, options=options, init=init)


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike)) and os.path.isabs(str(value))


def _public_name(path: str | os.PathLike) -> str:
    """An upload's id (its file name), or any other file's bare name."""
    name = Path(path).name
    return name if UPLOAD_ID.fullmatch(name) else name or "?"
