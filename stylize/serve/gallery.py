"""The gallery: finished results, with the settings read back from their PNG metadata.

Each result carries what made it in its PNG text (written by the Job):
``stylize:settings`` (the settings' JSON form, ``Settings.to_json``; a
result of a version that wrote a repr shows no settings and cannot be run
again), ``stylize:content`` and ``stylize:style`` (upload ids, or paths
of uploads in this work folder for results of earlier versions, mapped back
to upload ids when those still exist). That is enough to show the settings,
to compare two results and to run one again.
"""
from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from stylize.core.request.settings import read_json

from .forms import form_of
from .uploads import UploadStore
from .work import JOB_ID, UPLOAD_ID, WorkFolder, regular


class Gallery:
    def __init__(self, work: WorkFolder, uploads: UploadStore):
        self.work, self.uploads = work, uploads
        self._cache: dict[str, tuple[tuple[int, int], dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def items(self) -> list[dict[str, Any]]:
        """Every result in the work folder, newest first."""
        found = []
        for path in self.work.results.glob("*.png"):
            if not JOB_ID.fullmatch(path.stem) or not regular(path):
                continue
            item = self.item(path)
            if item is not None:
                found.append(item)
        return sorted(found, key=lambda item: -item["created"])

    def item(self, path: Path) -> dict[str, Any] | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        item = self._read(path, stat.st_mtime)
        with self._lock:
            self._cache[path.name] = (key, item)
        return item

    def _read(self, path: Path, mtime: float) -> dict[str, Any] | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as img:
                    width, height = img.size
                    text = dict(getattr(img, "text", {}) or {})
        except Exception:
            return None
        if "stylize:settings" not in text:
            return None
        fields = read_json(text["stylize:settings"])
        content = self._input(text.get("stylize:content", ""))
        styles = [self._input(part) for part in self._split_styles(text.get("stylize:style", ""))]
        readable, fields = fields is not None, fields or {}
        weights = fields.get("style_weights") or [1.0] * len(styles)
        request = None
        if readable and content["upload"] and styles and all(style["upload"] for style in styles):
            request = {"content": content["upload"],
                       "styles": [{"upload": style["upload"], "weight": float(weight)}
                                  for style, weight in zip(styles, weights)],
                       "settings": form_of(fields)}
        return {"id": path.stem, "url": f"/api/jobs/{path.stem}/result", "width": width, "height": height,
                "created": mtime, "content": content, "styles": styles, "settings": _shown(fields),
                "step": text.get("stylize:step"), "request": request}

    def _input(self, path_text: str) -> dict[str, Any]:
        """An input named in the metadata: its upload id and label if it is an upload still here."""
        path = self.work.uploads / path_text if UPLOAD_ID.fullmatch(path_text) else Path(path_text)
        upload_id = self.work.upload_id_of(path) if path_text else None
        if upload_id is None:
            return {"upload": None, "name": Path(path_text).name or "?"}
        upload = self.uploads.get(upload_id)
        return {"upload": upload_id, "name": upload.name, "thumb": upload.to_json()["thumb"]}

    def _split_styles(self, text: str) -> list[str]:
        """``stylize:style`` is the style ids (or, before, paths) joined by ", ": split where one starts."""
        if os.sep not in text:
            return [part for part in text.split(", ") if part]
        prefix = re.escape(f"{self.work.uploads}{os.sep}")
        return [part for part in re.split(f", (?={prefix})", text) if part]


def _shown(fields: dict[str, Any]) -> dict[str, Any]:
    """The settings as the page lists them: plain JSON values, file-path options left out."""
    shown = form_of(fields)
    for name in ("style_weights", "threads", "gpu"):
        if fields.get(name) is not None:
            shown[name] = list(fields[name]) if isinstance(fields[name], (list, tuple)) else fields[name]
    return shown
