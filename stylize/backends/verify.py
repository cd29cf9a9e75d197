"""Is a downloaded file the weights we asked for? Checks made before installing it.

Not every publisher gives a checksum (the Oxford VGG files have none), and a
server can answer with an error page, a truncated file or a different
network. Caffe would load such a file and silently leave the missing layers
random, so a file is refused unless it has the expected size and holds every
layer the network needs, with the right shapes. Each check raises a one-line
:class:`ModelError` ending in "nothing installed", since the caller installs
only files that pass.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Mapping

from stylize.core import ModelError, atomic_write, one_line, stylize_home

from .pycaffe import import_caffe


def check_size(path: Path, expected: int, what: str) -> None:
    size = path.stat().st_size
    if size != expected:
        raise ModelError(f"{what} is {size:,} bytes, expected {expected:,} "
                         f"({'truncated' if size < expected else 'not the expected file'}); "
                         "nothing installed")


def check_structure(path: Path, expected: Mapping[str, tuple[int, ...]],
                    what: str) -> dict[str, list[tuple[int, ...]]]:
    """``path`` must parse as a Caffe NetParameter holding every layer of ``expected``
    with that weight shape, a matching bias and all the values, in the current
    (``layer``) or the V1 (``layers``, as in the 2014 VGG files) format.

    Returns every layer's blob shapes, for ``remember_shapes`` once the file is in place."""
    net = _read_caffemodel(path, lambda reason: f"{what} is not a Caffe model ({reason}); nothing installed")
    found = {layer.name: layer for layer in list(net.layer) + list(net.layers)}
    missing = [name for name in expected if name not in found]
    if missing:
        raise ModelError(f"{what} lacks layer(s) {_some(missing)}; not the expected network; "
                         "nothing installed")
    for name, shape in expected.items():
        blobs = found[name].blobs
        if len(blobs) != 2:
            raise ModelError(f"{what}: layer {name} has {len(blobs)} blobs, expected weights and bias; "
                             "nothing installed")
        weights, bias = blobs
        got = _blob_shape(weights)
        if got != tuple(shape):
            raise ModelError(f"{what}: layer {name} weights have shape {got}, expected {tuple(shape)}; "
                             "nothing installed")
        if _blob_values(weights) != math.prod(shape):
            raise ModelError(f"{what}: layer {name} holds {_blob_values(weights)} weight values, "
                             f"expected {math.prod(shape)}; nothing installed")
        if math.prod(_blob_shape(bias)) != shape[0] or _blob_values(bias) != shape[0]:
            raise ModelError(f"{what}: layer {name} bias has shape {_blob_shape(bias)}, expected "
                             f"({shape[0]},); nothing installed")
    return _layer_shapes(net)


def _blob_shape(blob) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(blob.shape.dim)
    return tuple(d for d in (blob.num, blob.channels, blob.height, blob.width))  # V1 layout


def _blob_values(blob) -> int:
    return len(blob.data) or len(blob.double_data)


def caffemodel_shapes(path: Path) -> dict[str, list[tuple[int, ...]]]:
    """``{layer: [blob shapes]}`` of a caffemodel, remembered per file version.

    Parsing a caffemodel in Python costs 0.3 s for the 80 MB VGG19 file and
    seconds for the official 550 MB ones, so the result is kept in
    ``$STYLIZE_HOME/cache`` keyed by the file's path, size and mtime: the
    check costs that once per weights file, not once per run (and never for
    weights this package writes itself: see ``remember_shapes``).
    """
    cached = _shapes_file(path)
    if cached.is_file():
        return {name: [tuple(s) for s in shapes] for name, shapes in json.loads(cached.read_text()).items()}
    net = _read_caffemodel(path, lambda reason: f"{path}: not a readable Caffe model, truncated or corrupt "
                                                f"({reason}); fetch it again or check --weights")
    shapes = _layer_shapes(net)
    remember_shapes(path, shapes)
    return shapes


def remember_shapes(path: Path, shapes: Mapping[str, list[tuple[int, ...]]]) -> None:
    """Record the blob shapes of a caffemodel just written, so no run has to parse it for them."""
    with atomic_write(_shapes_file(path)) as f:
        f.write(json.dumps({name: [list(s) for s in blobs] for name, blobs in shapes.items()}).encode())


def _shapes_file(path: Path) -> Path:
    path = Path(path).resolve()
    stat = path.stat()
    key = hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    return stylize_home() / "cache" / f"shapes-{key}.json"


def _layer_shapes(net) -> dict[str, list[tuple[int, ...]]]:
    return {layer.name: [_blob_shape(b) for b in layer.blobs]
            for layer in list(net.layer) + list(net.layers) if layer.blobs}


def _read_caffemodel(path: Path, failure):
    """The NetParameter of a binary caffemodel; ``failure(reason)`` words the ModelError if it is none."""
    from google.protobuf.message import DecodeError
    net = import_caffe().proto.caffe_pb2.NetParameter()
    try:
        net.ParseFromString(path.read_bytes())
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(failure(one_line(e))) from None
    return net


def check_weights_fit(net_shapes: Mapping[str, list[tuple[int, ...]]], weights: Path) -> None:
    """Refuse weights that lack a layer of the network or hold other shapes.

    Caffe would abort the process on a shape mismatch and silently keep
    uninitialized weights for a missing layer (a black or grey result).
    """
    stored = caffemodel_shapes(weights)
    missing = [name for name in net_shapes if name not in stored]
    if missing:
        raise ModelError(f"{weights}: no weights for layer(s) {_some(missing)}; "
                         "these weights belong to another network")
    for name, shapes in net_shapes.items():
        if [tuple(s) for s in shapes] != [tuple(int(d) for d in s) for s in stored[name]][:len(shapes)]:
            raise ModelError(f"{weights}: layer {name} holds shapes {stored[name]}, the network needs "
                             f"{shapes}; these weights belong to another network")


def _some(names: list[str], shown: int = 4) -> str:
    """The first few names, and how many more: one line even for a whole network."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
