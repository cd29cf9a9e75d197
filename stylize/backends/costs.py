"""What a Caffe network costs at one input size: FLOPs per layer and bytes of memory.

Counted from the layer shapes of a pycaffe ``Net`` already reshaped to the
input size, plus the layer parameters of its prototxt (kernel sizes, strides).

Conventions:

- One multiply-add is **two** FLOPs (the "2 x MACs" convention). VGG19's
  16 convolutions and 3 fully connected layers at 224x224 are 19.6 G
  multiply-adds, i.e. 39.3 GFLOPs here (papers that quote "19.6 GFLOPs"
  count multiply-adds).
- Backward is what style transfer runs: the gradient with respect to the
  input image only. Every parameter is frozen (``lr_mult: 0``) and
  stylize's Caffe build computes no weight or bias gradients for frozen
  parameters, so a convolution's backward is one GEMM (plus col2im adds),
  as many FLOPs as its forward.
- Convolutions and fully connected layers are counted exactly; pooling as
  one operation per window element; element-wise layers (ReLU, LRN, ...) at
  a few operations per element (they are well under 1% of a VGG step).
  Layer types without a model count zero and are listed in ``uncounted``.

Memory is what Caffe itself allocates (float32): the data of every distinct
blob (in-place layers share one; a Split's tops share its bottom's data), the
diff of every blob that backward writes, the parameters, each layer's own
buffers (max-pooling's argmax indices, LRN's scale, bias multipliers) and the
im2col column buffer. In stylize's Caffe build all convolution layers share
one column buffer (scripts/install_pycaffe.py), which grows to the largest
need of the layers that run and is kept between calls: it counts once, as
the largest layer's columns (1x1 convolutions need none). Ungrouped 2-D
convolutions lower a band of output rows at a time
(scripts/caffe/conv_bands.hpp), so their need is one band (``_band_columns``),
not the whole image; grouped ones keep stock Caffe's. LRN also
allocates a temporary during forward and backward; the largest such
temporary is ``transient_bytes``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .prototxt import parse

FLOAT = 4  # bytes of a float32, Caffe's Dtype here
#: A band of output rows gives the GEMM at least MIN_COLUMNS columns and holds at
#: least BAND_BYTES of them: kMinColumns and kBandBytes of scripts/caffe/conv_bands.hpp.
MIN_COLUMNS = 4096
BAND_BYTES = 8 << 20

#: (forward, backward) operations per output element of element-wise layers.
ELEMENTWISE = {
    "ReLU": (1, 1), "PReLU": (2, 2), "ELU": (3, 3), "TanH": (1, 3), "Sigmoid": (1, 3),
    "AbsVal": (1, 1), "BNLL": (3, 3), "Power": (3, 3), "Exp": (1, 2), "Log": (1, 2),
    "Dropout": (0, 0), "Scale": (1, 1), "Bias": (1, 1), "BatchNorm": (2, 2), "ReLU6": (2, 1),
}
#: Layers that move or share memory but compute nothing.
FREE = {"Input", "Concat", "Flatten", "Reshape", "Slice", "Silence", "Permute", "Crop"}
#: Layers whose tops share both data and diff with their bottom (no memory of their own).
SHARES_DATA_AND_DIFF = {"Flatten", "Reshape"}


@dataclass
class LayerCost:
    name: str
    type: str
    forward_flops: int = 0
    backward_flops: int = 0
    #: Persistent buffers of the layer itself (argmax, LRN scale, multipliers).
    buffer_bytes: int = 0
    #: What it needs of the im2col column buffer that all convolutions share.
    col_bytes: int = 0
    #: Whether that need is whole-image columns, which grow with the image (a band hardly does).
    col_grows: bool = False
    #: Freed again inside the layer's forward or backward.
    transient_bytes: int = 0


@dataclass
class NetCosts:
    """Costs of one network at one input shape; sums over ``layers``."""

    input_shape: tuple[int, ...]
    layers: list[LayerCost]
    blob_data_bytes: int
    blob_diff_bytes: int
    param_bytes: int
    uncounted: tuple[str, ...] = ()
    #: Bytes of each blob (data), by name, for callers that reason about features.
    blob_bytes: Mapping[str, int] = field(default_factory=dict)
    #: The largest single array Caffe allocates that grows with the image (blobs,
    #: whole-image im2col columns; a band of columns stays small): (what, number
    #: of values). Caffe aborts the process when an array would exceed 2^31 - 1 values.
    largest: tuple[str, int] = ("", 0)

    @property
    def forward_flops(self) -> int:
        return sum(layer.forward_flops for layer in self.layers)

    @property
    def backward_flops(self) -> int:
        return sum(layer.backward_flops for layer in self.layers)

    @property
    def flops(self) -> int:
        """Forward plus input-gradient backward: one objective evaluation."""
        return self.forward_flops + self.backward_flops

    @property
    def buffer_bytes(self) -> int:
        """The layers' own buffers plus the shared column buffer."""
        return sum(layer.buffer_bytes for layer in self.layers) + self.col_bytes

    @property
    def col_bytes(self) -> int:
        """The shared im2col column buffer: as large as the largest layer's need."""
        return max((layer.col_bytes for layer in self.layers), default=0)

    @property
    def transient_bytes(self) -> int:
        return max((layer.transient_bytes for layer in self.layers), default=0)

    def activation_bytes(self, backward: bool = True) -> int:
        """Memory that grows with the image: blobs, their diffs, layer buffers, the largest temporary."""
        diff = self.blob_diff_bytes if backward else 0
        return self.blob_data_bytes + diff + self.buffer_bytes + self.transient_bytes


@dataclass
class Layer:
    """What a layer's cost is computed from: its blobs' shapes, its weights' shapes, its parameters."""

    type: str
    bottoms: list[tuple[int, ...]]
    tops: list[tuple[int, ...]]
    weights: list[tuple[int, ...]]
    #: Its LayerParameter from the prototxt, None when not given.
    param: Any = None

    @property
    def top(self) -> int:
        """Values of the first top."""
        return math.prod(self.tops[0]) if self.tops else 0

    @property
    def bottom(self) -> int:
        """Values of the first bottom."""
        return math.prod(self.bottoms[0]) if self.bottoms else 0


def _repeated(values, default: int, count: int, h: int = 0, w: int = 0) -> list[int]:
    """Caffe's repeated spatial fields: one value for every axis, one per axis, or _h/_w."""
    if h or w:
        return [h, w]
    values = list(values)
    if not values:
        return [default] * count
    if len(values) == 1:
        return values * count
    return values


# -- one function per layer type: Layer -> the LayerCost fields it sets -----------------

def _convolution(layer: Layer) -> dict:
    """Exact: a GEMM each way (the transposed convolution swaps bottom and top), col2im adds backward."""
    w = layer.weights[0]
    per_output = math.prod(w[1:])  # Cin/group * kh * kw
    kernel = w[2:]
    top, bottom = layer.tops[0], layer.bottoms[0]
    if layer.type == "Convolution":
        macs = layer.top * per_output
        col = bottom[1] * math.prod(kernel) * math.prod(top[2:])
    else:
        macs = layer.bottom * per_output
        col = top[1] * math.prod(kernel) * math.prod(bottom[2:])
    bias = len(layer.weights) > 1
    lowered = not _is_1x1(kernel, layer.param)
    cost = {"forward_flops": 2 * macs + (layer.top if bias else 0),
            "backward_flops": 2 * macs + (col if lowered else 0),  # GEMM + col2im adds
            "buffer_bytes": math.prod(top[2:]) * FLOAT if bias else 0}  # bias multiplier
    if lowered:
        groups = bottom[1] // w[1]
        banded = layer.type == "Convolution" and groups == 1 and len(kernel) == 2
        cost["col_bytes"] = (_band_columns(per_output, top[2:]) if banded else col) * FLOAT
        cost["col_grows"] = not banded
    return cost


def _inner_product(layer: Layer) -> dict:
    n_out, k = layer.weights[0][0], math.prod(layer.weights[0][1:])
    m = layer.top // n_out
    bias = len(layer.weights) > 1
    return {"forward_flops": 2 * m * k * n_out + (layer.top if bias else 0),
            "backward_flops": 2 * m * k * n_out,
            "buffer_bytes": m * FLOAT if bias else 0}


def _pooling(layer: Layer) -> dict:
    """One operation per window element; max pooling routes one value back and keeps its argmax."""
    pp = layer.param.pooling_param if layer.param is not None else None
    if pp is not None and pp.global_pooling:
        window = math.prod(layer.bottoms[0][2:])
    elif pp is not None:
        window = math.prod(_repeated([pp.kernel_size] if pp.kernel_size else [], 2, 2, pp.kernel_h, pp.kernel_w))
    else:
        window = 4
    is_max = pp is None or pp.pool == 0  # MAX is the default
    return {"forward_flops": layer.top * window,
            "backward_flops": layer.top if is_max else layer.top * window,
            "buffer_bytes": layer.top * FLOAT if is_max and len(layer.tops) == 1 else 0}  # argmax (int32)


def _lrn(layer: Layer) -> dict:
    lrn = layer.param.lrn_param if layer.param is not None else None
    size = lrn.local_size if lrn is not None else 5
    # per output: sum of `size` squares, scale, power, product.
    cost = {"forward_flops": layer.top * (2 * size + 4), "backward_flops": layer.top * (size + 8)}
    if lrn is None or lrn.norm_region == 0:  # across channels
        _, c, h, w = layer.bottoms[0]
        cost["buffer_bytes"] = layer.bottom * FLOAT  # scale_
        cost["transient_bytes"] = ((c + size - 1) * h * w + h * w) * FLOAT
    else:  # built from internal split/square/pool/power/product layers: data + diff each
        cost["buffer_bytes"] = 10 * layer.bottom * FLOAT
    return cost


def _softmax(layer: Layer) -> dict:
    channels = layer.tops[0][1]
    return {"forward_flops": 5 * layer.top, "backward_flops": 4 * layer.top,
            "buffer_bytes": (layer.top // max(1, channels) + channels) * FLOAT}


def _eltwise(layer: Layer) -> dict:
    return {"forward_flops": (len(layer.bottoms) - 1) * layer.top, "backward_flops": len(layer.bottoms) * layer.top}


def _split(layer: Layer) -> dict:
    """The tops share the bottom's data; backward sums their diffs."""
    return {"backward_flops": (len(layer.tops) - 1) * layer.bottom}


def _elementwise(layer: Layer) -> dict:
    forward, backward = ELEMENTWISE[layer.type]
    return {"forward_flops": forward * layer.top, "backward_flops": backward * layer.top}


def _free(layer: Layer) -> dict:
    return {}


#: How each layer type is counted; the types missing here are ``uncounted``.
LAYER_COSTS: dict[str, Callable[[Layer], dict]] = {
    "Convolution": _convolution, "Deconvolution": _convolution, "InnerProduct": _inner_product,
    "Pooling": _pooling, "LRN": _lrn, "Softmax": _softmax, "Eltwise": _eltwise, "Split": _split,
    **{kind: _elementwise for kind in ELEMENTWISE}, **{kind: _free for kind in FREE},
}


def net_costs(net, proto=None) -> NetCosts:
    """FLOPs and memory of ``net`` at its current input shape.

    ``proto`` is the network's NetParameter or prototxt text, for the layer
    parameters that shapes do not tell (pooling kernels, convolution strides);
    without it pooling is counted as 2x2 windows and every convolution with
    a 1x1 kernel is taken as needing no column buffer.
    Nothing is allocated: only shapes are read.
    """
    if isinstance(proto, str):
        proto = parse(proto)
    params = {layer.name: layer for layer in proto.layer} if proto is not None else {}
    shapes = {name: tuple(blob.shape) for name, blob in net.blobs.items()}
    count = {name: math.prod(shape) for name, shape in shapes.items()}
    layers, uncounted = [], set()
    shared_data, shared_diff = set(), set()
    for name, caffe_layer in zip(net._layer_names, net.layers):
        kind = caffe_layer.type
        bottoms, tops = list(net.bottom_names[name]), list(net.top_names[name])
        weights = [tuple(blob.shape) for blob in net.params[name]] if name in net.params else []
        layer = Layer(kind, [shapes[b] for b in bottoms], [shapes[t] for t in tops], weights, params.get(name))
        if kind not in LAYER_COSTS:
            uncounted.add(kind)
        layers.append(LayerCost(name, kind, **LAYER_COSTS.get(kind, _free)(layer)))
        if kind == "Split":
            shared_data.update(tops)
        if kind in SHARES_DATA_AND_DIFF or (kind == "Concat" and len(bottoms) == 1):
            shared_data.update(tops)
            shared_diff.update(tops)
    data = sum(count[b] for b in shapes if b not in shared_data) * FLOAT
    diff = sum(count[b] for b in shapes if b not in shared_diff) * FLOAT
    param_bytes = sum(math.prod(blob.shape) for blobs in net.params.values() for blob in blobs) * FLOAT
    arrays = [(f"blob {name}", c) for name, c in count.items()]
    arrays += [(f"{layer.name}'s im2col buffer", layer.col_bytes // FLOAT) for layer in layers if layer.col_grows]
    return NetCosts(input_shape=shapes[net.inputs[0]] if net.inputs else (), layers=layers,
                    blob_data_bytes=data, blob_diff_bytes=diff, param_bytes=param_bytes,
                    uncounted=tuple(sorted(uncounted)),
                    blob_bytes={name: c * FLOAT for name, c in count.items()},
                    largest=max(arrays, key=lambda item: item[1], default=("", 0)))


def _band_columns(kernel_dim: int, output_hw) -> int:
    """Values of one band's columns, as conv_bands::band_rows sizes it (whole output rows)."""
    height, width = output_hw
    rows = max(-(-MIN_COLUMNS // width), BAND_BYTES // (kernel_dim * width * FLOAT))
    return kernel_dim * max(1, min(height, rows)) * width


def _is_1x1(kernel, lp) -> bool:
    """Caffe skips im2col (and its buffer) for 1x1 kernels with stride 1 and no padding."""
    if any(k != 1 for k in kernel):
        return False
    if lp is None:
        return True
    cp = lp.convolution_param
    stride = _repeated(cp.stride, 1, len(kernel), cp.stride_h, cp.stride_w)
    pad = _repeated(cp.pad, 0, len(kernel), cp.pad_h, cp.pad_w)
    return all(s == 1 for s in stride) and all(p == 0 for p in pad)
