"""Prototxt text on its way to Caffe: the one place it is parsed, rewritten and built into a ``caffe.Net``.

Caffe aborts the process on a prototxt it cannot parse, so the text is parsed
here first with Caffe's own protobuf schema: an unknown field or layer type
becomes a one-line ModelError. The network is then rewritten so that:

- its input is one ``input``/``input_shape`` blob (old ``input_dim`` and
  ``Input`` layers are both accepted);
- it keeps only the layers that the requested blobs depend on (the cut:
  nothing above the deepest layer a loss reads, no unused branches);
- every parameter has ``lr_mult: 0`` and ``force_backward`` is on, so that
  backward computes input gradients but, with stylize's Caffe build, no
  weight gradients.

A ``caffe.Net`` is built from such text by :func:`build_net`, at the
prototxt's input size or another one.
"""
from __future__ import annotations

import tempfile
from typing import Sequence

from stylize.core import ModelError, UsageError

from .pycaffe import import_caffe


def parse(text: str, source: str = "prototxt"):
    """NetParameter from prototxt text, or a ModelError naming the problem."""
    from google.protobuf import text_format
    caffe_pb2 = import_caffe().proto.caffe_pb2
    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(text, net)
    except text_format.ParseError as e:
        raise ModelError(f"{source}: not a valid Caffe network definition ({e})") from None
    if net.layers:
        raise ModelError(f"{source}: uses the pre-2015 V1 'layers' format; upgrade it with Caffe's "
                         "upgrade_net_proto_text tool")
    known = set(import_caffe().layer_type_list())
    unknown = sorted({layer.type for layer in net.layer} - known)
    if unknown:
        raise ModelError(f"{source}: layer type(s) {', '.join(unknown)} are not in this Caffe build")
    return net


def blobs(net) -> list[str]:
    """Every blob a loss could read, input to output, without duplicates."""
    seen = []
    for layer in net.layer:
        for top in layer.top:
            if top not in seen:
                seen.append(top)
    return seen


def _input_name_and_shape(net, source: str) -> tuple[str, list[int]]:
    if net.input:
        if net.input_shape:
            dims = list(net.input_shape[0].dim)
        elif net.input_dim:
            dims = list(net.input_dim[:4])
        else:
            dims = [1, 3, 224, 224]
        return net.input[0], dims
    for layer in net.layer:
        if layer.type == "Input":
            return layer.top[0], list(layer.input_param.shape[0].dim) or [1, 3, 224, 224]
    raise ModelError(f"{source}: no input blob (neither `input:` nor an Input layer)")


def prepare(text: str, needed: Sequence[str], source: str = "prototxt", frozen: bool = True) -> str:
    """The prototxt text of the frozen network cut down to what ``needed`` depends on.

    ``frozen=False`` drops every ``lr_mult`` instead: backward then computes
    weight gradients as stock Caffe does under ``force_backward``, for
    benchmarks measuring what freezing saves.
    """
    net = parse(text, source)
    input_name, dims = _input_name_and_shape(net, source)
    available = [b for b in blobs(net) if b != input_name]
    missing = [name for name in needed if name not in available]
    if missing:
        raise UsageError(f"layer(s) {', '.join(missing)} not in this network; "
                         f"available: {', '.join(available)}")
    # Walk backwards: keep a layer if it writes a blob still required.
    required, kept = set(needed), []
    for layer in reversed(net.layer):
        if layer.type == "Input":
            continue
        if required & set(layer.top):
            kept.append(layer)
            required |= set(layer.bottom)
    caffe_pb2 = import_caffe().proto.caffe_pb2
    out = caffe_pb2.NetParameter()
    out.name = net.name
    out.input.append(input_name)
    out.input_shape.add().dim.extend([1, dims[1] if len(dims) > 1 else 3] + list(dims[2:4] or [224, 224]))
    out.force_backward = True
    for layer in reversed(kept):
        copy = out.layer.add()
        copy.CopyFrom(layer)
        copy.ClearField("include")
        copy.ClearField("exclude")
        blob_count = _param_blobs(copy) if frozen else 0
        copy.ClearField("param")
        for _ in range(blob_count):
            copy.param.add().lr_mult = 0
    from google.protobuf import text_format
    return text_format.MessageToString(out)


def build_net(text: str, input_shape: Sequence[int] | None = None):
    """A ``caffe.Net`` (test phase) of prototxt text, its input ``input_shape`` (NCHW) if given.

    pycaffe builds a network only from a file, hence the temporary one.
    Building allocates the parameters (filled by their fillers until weights
    are copied in) and a few small multipliers, not the activations: a net
    built only to read its shapes at another size (``costs.net_costs``) is cheap.
    """
    if input_shape is not None:
        from google.protobuf import text_format
        net = parse(text)
        dims = net.input_shape[0].dim if net.input_shape else net.input_dim
        del dims[:]
        dims.extend(int(d) for d in input_shape)
        text = text_format.MessageToString(net)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
        f.write(text)
        f.flush()
        return import_caffe().Net(f.name, 1)  # 1 == caffe.TEST


def _param_blobs(layer) -> int:
    """How many learnable blobs a layer has (weights, bias), for its lr_mult entries."""
    if layer.type == "Convolution":
        return 2 if layer.convolution_param.bias_term else 1
    if layer.type == "InnerProduct":
        return 2 if layer.inner_product_param.bias_term else 1
    return len(layer.param)
