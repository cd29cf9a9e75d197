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
from typing import Mapping

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

    def total_bytes(self, backward: bool = True) -> int:
        """Everything Caffe holds for forward (and backward): activations plus parameters."""
        return self.activation_bytes(backward) + self.param_bytes


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


def _layer_params(proto) -> dict:
    """``{layer name: LayerParameter}`` from a NetParameter or prototxt text."""
    if proto is None:
        return {}
    if isinstance(proto, str):
        from google.protobuf import text_format

        from .pycaffe import import_caffe
        message = import_caffe().proto.caffe_pb2.NetParameter()
        text_format.Merge(proto, message)
        proto = message
    return {layer.name: layer for layer in proto.layer}


def net_costs(net, proto=None) -> NetCosts:
    """FLOPs and memory of ``net`` at its current input shape.

    ``proto`` is the network's NetParameter or prototxt text, for the layer
    parameters that shapes do not tell (pooling kernels, convolution strides);
    without it pooling is counted as 2x2 windows and every convolution with
    a 1x1 kernel is taken as needing no column buffer.
    Nothing is allocated: only shapes are read.
    """
    params = _layer_params(proto)
    shapes = {name: tuple(blob.shape) for name, blob in net.blobs.items()}
    count = {name: math.prod(shape) for name, shape in shapes.items()}
    layers, uncounted = [], set()
    shared_data, shared_diff = set(), set()
    growing_cols = []
    for index, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
        kind = layer.type
        bottoms, tops = list(net.bottom_names[name]), list(net.top_names[name])
        weights = [tuple(blob.shape) for blob in net.params[name]] if name in net.params else []
        cost = LayerCost(name, kind)
        top = count[tops[0]] if tops else 0
        bottom = count[bottoms[0]] if bottoms else 0
        lp = params.get(name)
        if kind in ("Convolution", "Deconvolution"):
            w = weights[0]
            per_output = math.prod(w[1:])  # Cin/group * kh * kw
            kernel = w[2:]
            if kind == "Convolution":
                macs = top * per_output
                spatial_out = math.prod(shapes[tops[0]][2:])
                col = shapes[bottoms[0]][1] * math.prod(kernel) * spatial_out
                spatial_bias = spatial_out
            else:  # the transposed convolution: roles of bottom and top swap
                macs = bottom * per_output
                spatial_in = math.prod(shapes[bottoms[0]][2:])
                col = shapes[tops[0]][1] * math.prod(kernel) * spatial_in
                spatial_bias = math.prod(shapes[tops[0]][2:])
            bias = len(weights) > 1
            cost.forward_flops = 2 * macs + (top if bias else 0)
            cost.backward_flops = 2 * macs + (col if not _is_1x1(kernel, lp) else 0)  # GEMM + col2im adds
            if not _is_1x1(kernel, lp):
                groups = shapes[bottoms[0]][1] // w[1]
                banded = kind == "Convolution" and groups == 1 and len(kernel) == 2
                cost.col_bytes = (_band_columns(per_output, shapes[tops[0]][2:]) if banded else col) * FLOAT
                if not banded:  # whole-image columns grow with the image; a band hardly does
                    growing_cols.append(cost)
            cost.buffer_bytes = spatial_bias * FLOAT if bias else 0
        elif kind == "InnerProduct":
            n_out, k = weights[0][0], math.prod(weights[0][1:])
            m = top // n_out
            bias = len(weights) > 1
            cost.forward_flops = 2 * m * k * n_out + (top if bias else 0)
            cost.backward_flops = 2 * m * k * n_out
            cost.buffer_bytes = m * FLOAT if bias else 0
        elif kind == "Pooling":
            pp = lp.pooling_param if lp is not None else None
            if pp is not None and pp.global_pooling:
                window = math.prod(shapes[bottoms[0]][2:])
            elif pp is not None:
                window = math.prod(_repeated([pp.kernel_size] if pp.kernel_size else [], 2, 2,
                                             pp.kernel_h, pp.kernel_w))
            else:
                window = 4
            is_max = pp is None or pp.pool == 0  # MAX is the default
            cost.forward_flops = top * window
            cost.backward_flops = top if is_max else top * window
            if is_max and len(tops) == 1:
                cost.buffer_bytes = top * FLOAT  # argmax indices (int32)
        elif kind == "LRN":
            lrn = lp.lrn_param if lp is not None else None
            size = lrn.local_size if lrn is not None else 5
            across = lrn is None or lrn.norm_region == 0
            # per output: sum of `size` squares, scale, power, product.
            cost.forward_flops = top * (2 * size + 4)
            cost.backward_flops = top * (size + 8)
            n, c, h, w = shapes[bottoms[0]]
            if across:
                cost.buffer_bytes = bottom * FLOAT  # scale_
                cost.transient_bytes = ((c + size - 1) * h * w + h * w) * FLOAT
            else:  # built from internal split/square/pool/power/product layers: data + diff each
                cost.buffer_bytes = 10 * bottom * FLOAT
        elif kind == "Softmax":
            cost.forward_flops = 5 * top
            cost.backward_flops = 4 * top
            cost.buffer_bytes = (top // max(1, shapes[tops[0]][1]) + shapes[tops[0]][1]) * FLOAT
        elif kind == "Eltwise":
            cost.forward_flops = (len(bottoms) - 1) * top
            cost.backward_flops = len(bottoms) * top
        elif kind == "Split":
            cost.backward_flops = (len(tops) - 1) * bottom
            shared_data.update(tops)
        elif kind in ELEMENTWISE:
            forward, backward = ELEMENTWISE[kind]
            cost.forward_flops, cost.backward_flops = forward * top, backward * top
        elif kind not in FREE:
            uncounted.add(kind)
        if kind in SHARES_DATA_AND_DIFF or (kind == "Concat" and len(bottoms) == 1):
            shared_data.update(tops)
            shared_diff.update(tops)
        layers.append(cost)
    data = sum(count[b] for b in shapes if b not in shared_data) * FLOAT
    diff = sum(count[b] for b in shapes if b not in shared_diff) * FLOAT
    param_bytes = sum(math.prod(blob.shape) for blobs in net.params.values() for blob in blobs) * FLOAT
    arrays = [(f"blob {name}", c) for name, c in count.items()]
    arrays += [(f"{layer.name}'s im2col buffer", layer.col_bytes // FLOAT) for layer in growing_cols]
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


def net_at(prototxt_text: str, shape) -> object:
    """A throwaway Caffe net of ``prototxt_text`` with its input reshaped to ``shape`` (NCHW).

    Only its shapes are meant to be read (``net_costs``): activations are not
    allocated until used, so this costs the parameters (filled by their
    fillers, no weights are loaded) and a few small multipliers.
    """
    import tempfile

    from google.protobuf import text_format

    from .pycaffe import import_caffe
    caffe = import_caffe()
    message = caffe.proto.caffe_pb2.NetParameter()
    text_format.Merge(prototxt_text, message)
    dims = list(shape)
    if message.input_shape:
        del message.input_shape[0].dim[:]
        message.input_shape[0].dim.extend(dims)
    else:
        del message.input_dim[:]
        message.input_dim.extend(dims)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
        f.write(text_format.MessageToString(message))
        f.flush()
        return caffe.Net(f.name, 1)  # 1 == caffe.TEST
