"""The image sizes a Caffe network can take: the smallest from its prototxt, the largest from its arrays.

Caffe aborts the whole process (a CHECK failure, SIGABRT) when a layer's
output would have no rows or columns, and when one of its arrays would pass
2^31 values, so an image outside these bounds must be refused before the
network is reshaped.

Each spatial axis shrinks independently through convolutions and poolings,
by Caffe's own formulas; the smallest input side that keeps every layer at
least one position wide is found by bisection.
"""
from __future__ import annotations

import math
from typing import Sequence

from stylize.core import LENGTH_STEP, Reach, ResourceError, Tiling, make_tiling

#: Larger than any network's minimum; the bisection's upper end.
LARGEST = 4096
#: Caffe's limit on the values of one array (Blob); beyond it Caffe aborts the process.
CAFFE_MAX_COUNT = 2 ** 31 - 1
#: Image sizes are refused when their largest array is predicted above this
#: share of the limit (the prediction scales the network's own input size by area).
CAFFE_MARGIN = 0.95


def _first(values, default: int) -> int:
    return int(values[0]) if len(values) else default


def _axis(param, name: str, axis: str, default: int) -> int:
    """A 2-D parameter along ``axis``: ``name_h``/``name_w`` when set, else ``name`` (repeated or not)."""
    if param.HasField(f"{name}_{axis}"):  # has_field, not truthiness: some have non-zero defaults
        return int(getattr(param, f"{name}_{axis}"))
    value = getattr(param, name)
    if isinstance(value, int):
        return value if param.HasField(name) else default
    return _first(value, default)


def _conv_axis(param, axis: str) -> tuple[int, int, int, int]:
    """(kernel, stride, pad, dilation) of a convolution along ``axis`` ("h" or "w")."""
    return (_axis(param, "kernel", axis, 1) if param.HasField(f"kernel_{axis}") else _first(param.kernel_size, 1),
            _axis(param, "stride", axis, 1), _axis(param, "pad", axis, 0), _first(param.dilation, 1))


def _pool_axis(param, axis: str) -> tuple[int, int, int]:
    kernel = getattr(param, f"kernel_{axis}") if param.HasField(f"kernel_{axis}") else param.kernel_size
    return kernel, _axis(param, "stride", axis, 1), _axis(param, "pad", axis, 0)


def output_sizes(net, side: int, axis: str = "h") -> dict[str, int]:
    """Size along ``axis`` of every blob when the input is ``side`` long (Caffe's arithmetic)."""
    sizes: dict[str, int] = {name: side for name in net.input}
    for layer in net.layer:
        inputs = [sizes.get(b, side) for b in layer.bottom]
        size = min(inputs) if inputs else side
        if layer.type in ("Convolution", "Deconvolution"):
            kernel, stride, pad, dilation = _conv_axis(layer.convolution_param, axis)
            if layer.type == "Convolution":
                size = (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1
            else:
                size = stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad
        elif layer.type == "Pooling":
            param = layer.pooling_param
            if param.global_pooling:
                size = 1
            else:
                kernel, stride, pad = _pool_axis(param, axis)
                pooled = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
                if pad and (pooled - 1) * stride >= size + pad:
                    pooled -= 1
                size = pooled
        for top in layer.top:
            sizes[top] = size
    return sizes


def minimum_side(net, axis: str = "h") -> int:
    """The smallest input side along ``axis`` for which no layer is empty."""
    def fits(side: int) -> bool:
        return min(output_sizes(net, side, axis).values()) >= 1

    low, high = 1, LARGEST
    if fits(low):
        return low
    while high - low > 1:  # fits(high), not fits(low)
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def check_caffe_limit(reference, shape: Sequence[int]) -> None:
    """Refuse an image size (H, W) for which one of Caffe's arrays would pass 2^31 values.

    Caffe would abort the process (a failed CHECK), e.g. VGG's conv1_1
    activations at about 5790x5790 px. ``reference`` is the network's
    :class:`~stylize.backends.costs.NetCosts` at its own input size; its
    largest array is scaled by area.
    """
    name, count = reference.largest
    reference_shape = reference.input_shape
    if not count or len(reference_shape) < 4:
        return
    h, w = int(shape[0]), int(shape[1])
    area0 = reference_shape[2] * reference_shape[3]
    limit = CAFFE_MARGIN * CAFFE_MAX_COUNT
    predicted = count * h * w / area0
    if predicted <= limit:
        return
    long_side, short_side = max(h, w), min(h, w)
    area = limit / count * area0
    length = int((area * long_side / short_side) ** 0.5) // LENGTH_STEP * LENGTH_STEP
    raise ResourceError(f"a {w}x{h} px image is too large for Caffe: {name} would hold about "
                        f"{predicted:.3g} values, at or over Caffe's limit of 2^31 per array; "
                        f"--length {length} would fit")


#: Layers that keep every position where it is (element-wise, or across channels only).
_IN_PLACE = {"ReLU", "PReLU", "ELU", "TanH", "Sigmoid", "AbsVal", "BNLL", "Power", "Exp", "Log", "Dropout",
             "Scale", "Bias", "BatchNorm", "Split", "Concat", "Eltwise", "Input", "Silence", "ReLU6"}


def receptive_fields(net, axis: str = "h") -> dict[str, Reach] | None:
    """For every blob along ``axis``: its ``Reach`` (position i reads input pixels ``stride * i + first``
    to ``stride * i + last``), by Caffe's arithmetic as ``output_sizes``.

    None when some layer mixes all positions (fully connected, global
    pooling) or is not modelled here: such a network cannot be tiled.
    """
    fields: dict[str, Reach] = {name: Reach() for name in net.input}
    for layer in net.layer:
        inputs = [fields.get(b, Reach()) for b in layer.bottom]
        if len({reach.stride for reach in inputs}) > 1:
            return None  # branches at different strides cannot share one grid
        reach = Reach(inputs[0].stride, min(r.first for r in inputs), max(r.last for r in inputs)) \
            if inputs else Reach()
        if layer.type == "Convolution":
            kernel, step, pad, dilation = _conv_axis(layer.convolution_param, axis)
            reach = reach.through(kernel, step, pad, dilation)
        elif layer.type == "Pooling" and not layer.pooling_param.global_pooling:
            reach = reach.through(*_pool_axis(layer.pooling_param, axis))
        elif layer.type == "LRN":
            if layer.lrn_param.norm_region == 1:  # WITHIN_CHANNEL: a spatial window; ACROSS_CHANNELS is not
                half = (layer.lrn_param.local_size - 1) // 2
                reach = reach.through(2 * half + 1, 1, half)
        elif layer.type not in _IN_PLACE:
            return None
        for top in layer.top:
            fields[top] = reach
    return fields


def tiling(net, layers: Sequence[str]) -> Tiling | None:
    """The ``Tiling`` of ``layers`` in ``net`` (a NetParameter), or None when it cannot be tiled."""
    rows, cols = (receptive_fields(net, axis) for axis in ("h", "w"))
    if rows is None or cols is None:
        return None

    def grid(shape: Sequence[int]) -> dict[str, tuple[int, int]]:
        h, w = output_sizes(net, int(shape[0]), "h"), output_sizes(net, int(shape[1]), "w")
        return {layer: (h[layer], w[layer]) for layer in layers}

    return make_tiling(rows, cols, layers, grid)
