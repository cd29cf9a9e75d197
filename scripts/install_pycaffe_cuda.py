"""The CUDA build of stylize's pycaffe: ``scripts/install_pycaffe.py --cuda``.

The same ``brocolli-caffe`` sdist and patches as the CPU build
(``install_pycaffe.py``), plus the patches below, compiled for NVIDIA GPUs
with the CUDA 13.0 compiler that NVIDIA publishes on PyPI (Debian 12 has no
CUDA toolkit, and the cu12 nvcc wheel ships no nvcc). The result is its own
cached wheel, ``stylize-pycaffe-cuda``, meant for its own virtualenv
(``make setup-gpu`` makes ``.venv-cuda``); the CPU build and ``make test``
never touch any of this.

The wheel has to run on a GPU machine that has neither Debian's libraries
nor a package registry, so every shared library ``_caffe.so`` links from the
system (glog, gflags, protobuf, boost, hdf5 and what they pull in) is copied
into ``caffe/_libs`` beside it with an rpath of ``$ORIGIN``; only glibc,
libstdc++/libgcc, the CUDA runtime libraries (found in the ``nvidia/cu13``
wheels, PyTorch's own on such a machine) and the PyPI OpenBLAS stay outside.

Caffe talks to Python through Boost.Python, built for one Python minor
version. Debian 12's is for Python 3.11; for any other interpreter (GPU
machines with PyTorch run 3.12) Boost.Python 1.74 is compiled here from
Debian's own source package, with Debian's Python patches, for that
interpreter, and bundled like the rest.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from functools import partial
from pathlib import Path

import install_pycaffe as base

DIST_NAME = "stylize-pycaffe-cuda"

# CUDA 13.0, matching the runtime current PyTorch wheels (cu130) ship, so the
# module runs on the CUDA libraries a PyTorch GPU machine already has. These
# wheels install into one nvidia/cu13 prefix and together form a complete
# compiler (nvcc, ptxas, cudafe++ / cicc / crt headers / cudart / thrust+cub).
CUDA_BUILD_WHEELS = [
    "nvidia-cuda-nvcc==13.0.88", "nvidia-nvvm==13.0.88", "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-cccl==13.0.85", "nvidia-cuda-nvrtc==13.0.88",
]
# What the module loads at run time (cuDNN stays off: Caffe's cuDNN code uses
# the cuDNN 7 API that cuDNN 9 removed; convolutions run as im2col + cuBLAS).
CUDA_RUNTIME_WHEELS = [
    "nvidia-cuda-runtime==13.0.96", "nvidia-cublas==13.1.1.3", "nvidia-curand==10.4.0.35",
]
RUNTIME_REQUIRES = base.RUNTIME_REQUIRES + CUDA_RUNTIME_WHEELS

# Hopper (H100/H200) machine code only: the GPUs this is measured on. More
# architectures would multiply the 72 kernels' compile time and the size.
CUDA_ARCH_BIN = "90"

APT_PACKAGES = ["patchelf"]  # rewrites the rpaths of the bundled libraries

# Debian's Boost 1.74 source, for a Boost.Python of another Python version.
BOOST_PACKAGE = "boost1.74"
BOOST_ORIG = ("boost1.74_1.74.0+ds1.orig.tar.xz",
              "192f5df504d282cb81288f88232d8af45b64a9ab531e1c7cf8ae955f16f6bb28")
BOOST_DEBIAN = ("boost1.74_1.74.0+ds1-21.debian.tar.xz",
                "6549dab4824c781e0510272ac352f9e0367d4d47c16c94989e5ec7447fd8f0d8")
# Debian's patches that touch Boost.Python, in the order of its series file
# (Python 3.10's removed APIs and PEP 620, and the enum fixes).
BOOST_PYTHON_PATCHES = ["fix-enum.patch", "python-enum.patch",
                        "python3.10-file.patch", "python3.10-pep-620.patch"]

LIBS_DIR = "_libs"
# Libraries every Linux machine has in a compatible version: never bundled
# (a second libc or libstdc++ in one process breaks it).
SYSTEM_LIBS = re.compile(r"^(ld-linux.*|lib(c|m|dl|rt|pthread|resolv|util|anl)\.so.*|"
                         r"libstdc\+\+\.so.*|libgcc_s\.so.*|linux-vdso\.so.*)$")

# (file, old text, new text, why), applied after the CPU build's PATCHES;
# each must match exactly once.
CUDA_PATCHES = [
    ("CMakeLists.txt", "add_definitions( -DCPU_ONLY=1 )\n",
     "# stylize: CPU_ONLY only when asked for (the CUDA build says -DCPU_ONLY=OFF).\n"
     "if(NOT DEFINED CPU_ONLY OR CPU_ONLY)\n  add_definitions( -DCPU_ONLY=1 )\nendif()\n",
     "the sdist hard-codes a CPU-only build"),
    ("cmake/Dependencies.cmake", "# ---[ Google-protobuf\n",
     "# ---[ CUDA (stylize: the sdist never includes it)\ninclude(cmake/Cuda.cmake)\n\n"
     "# ---[ Google-protobuf\n",
     "find CUDA and set the nvcc architecture flags"),
    ("python/CMakeLists.txt", "add_library(pycaffe SHARED ${python_srcs} ${srcs})\n",
     "# stylize: the CUDA kernels go into the one Python module with the C++ code,\n"
     "# whose sources include the CUDA headers too.\n"
     "if(HAVE_CUDA)\n"
     "  include_directories(${CUDA_INCLUDE_DIRS})\n"
     "  caffe_cuda_compile(cuda_objs ${cuda})\n"
     "  list(APPEND srcs ${cuda_objs})\n"
     "endif()\n"
     "add_library(pycaffe SHARED ${python_srcs} ${srcs})\n",
     "compile the .cu sources into pycaffe"),
    ("python/CMakeLists.txt", "-lhdf5 ${STYLIZE_BLAS_LIBRARY})\n",
     "-lhdf5 ${STYLIZE_BLAS_LIBRARY}\n"
     "    ${CUDA_CUDART_LIBRARY} ${CUDA_curand_LIBRARY} ${CUDA_CUBLAS_LIBRARIES})\n",
     "link cudart, curand and cublas"),
    # CUDA 13 removed these three cudaDeviceProp fields (DeviceQuery only logs them).
    ("src/caffe/common.cpp", "<< prop.clockRate;",
     "<< stylize_device_attribute(cudaDevAttrClockRate, device);", "clockRate is gone in CUDA 13"),
    ("src/caffe/common.cpp", "(prop.deviceOverlap ? ",
     "(stylize_device_attribute(cudaDevAttrGpuOverlap, device) ? ",
     "deviceOverlap is gone in CUDA 13"),
    ("src/caffe/common.cpp", "(prop.kernelExecTimeoutEnabled ? ",
     "(stylize_device_attribute(cudaDevAttrKernelExecTimeout, device) ? ",
     "kernelExecTimeoutEnabled is gone in CUDA 13"),
    ("src/caffe/common.cpp", "#include <cstdio>\n", "#include <cstdio>\n#include <cstdlib>  // stylize: getenv\n",
     "getenv for the TF32 switch below"),
    ("src/caffe/common.cpp", "#else  // Normal GPU + CPU Caffe.\n",
     "#else  // Normal GPU + CPU Caffe.\n\n"
     "// stylize: cudaDeviceProp fields removed in CUDA 13, read as attributes.\n"
     "static int stylize_device_attribute(cudaDeviceAttr attribute, int device) {\n"
     "  int value = 0;\n"
     "  cudaDeviceGetAttribute(&value, attribute, device);\n"
     "  return value;\n"
     "}\n\n"
     "// stylize: STYLIZE_CUDA_TF32=1 lets cuBLAS run float GEMMs (all of a\n"
     "// convolution's work) on TF32 tensor cores: faster, 10-bit mantissa inputs.\n"
     "static void stylize_math_mode(cublasHandle_t handle) {\n"
     "  const char* tf32 = getenv(\"STYLIZE_CUDA_TF32\");\n"
     "  if (handle && tf32 && tf32[0] == '1') {\n"
     "    cublasSetMathMode(handle, CUBLAS_TF32_TENSOR_OP_MATH);\n"
     "  }\n"
     "}\n",
     "device attributes and the TF32 switch"),
    # A CUDA build must still run quietly in CPU mode on a machine without a
    # GPU (the whole test suite does): stock Caffe tries to make cuBLAS and
    # cuRAND handles for every thread and logs two errors when it cannot.
    ("src/caffe/common.cpp",
     "    mode_(Caffe::CPU), solver_count_(1), root_solver_(true) {\n",
     "    mode_(Caffe::CPU), solver_count_(1), root_solver_(true) {\n"
     "  // stylize: no usable GPU (CPU-only machine, no driver): stay in CPU\n"
     "  // mode without handles or error messages.\n"
     "  int stylize_devices = 0;\n"
     "  if (cudaGetDeviceCount(&stylize_devices) != cudaSuccess ||\n"
     "      stylize_devices == 0) {\n"
     "    cudaGetLastError();  // clear the sticky error\n"
     "    return;\n"
     "  }\n",
     "no cuBLAS/cuRAND handles (nor errors) without a GPU"),
    ("src/caffe/common.cpp",
     "    LOG(ERROR) << \"Cannot create Cublas handle. Cublas won't be available.\";\n  }\n",
     "    LOG(ERROR) << \"Cannot create Cublas handle. Cublas won't be available.\";\n  }\n"
     "  stylize_math_mode(cublas_handle_);\n",
     "TF32 switch for the first handle"),
    ("src/caffe/common.cpp",
     "  CUBLAS_CHECK(cublasCreate(&Get().cublas_handle_));\n",
     "  CUBLAS_CHECK(cublasCreate(&Get().cublas_handle_));\n"
     "  stylize_math_mode(Get().cublas_handle_);\n",
     "TF32 switch for the handle of a newly selected device"),
    # The banded CPU convolution (SPEED_PATCHES) sizes the shared column
    # buffer for one band; the GPU gemms need the whole image's columns. In
    # the CUDA build a layer bands when it is set up in CPU mode (stylize picks
    # the mode before it builds a net), and a GPU gemm on a banded layer stops.
    ("src/caffe/layers/base_conv_layer.cpp", "#else\n  banded_ = false;\n#endif\n",
     "#else\n"
     "  // stylize (CUDA build): band only in CPU mode; the GPU gemms want the\n"
     "  // whole image's columns.\n"
     "  banded_ = Caffe::mode() == Caffe::CPU && !is_1x1_ && !reverse_dimensions() &&\n"
     "      group_ == 1 && num_spatial_axes_ == 2 && !force_nd_im2col_;\n"
     "#endif\n",
     "band in CPU mode in the CUDA build too"),
] + [
    ("src/caffe/layers/base_conv_layer.cpp", signature, signature +
     "  CHECK(!banded_) << \"stylize: net set up in CPU mode runs on the GPU; reshape it\";\n",
     f"{signature.split('::')[1].split('(')[0]} refuses a banded layer")
    for signature in [
        "void BaseConvolutionLayer<Dtype>::forward_gpu_gemm(const Dtype* input,\n"
        "    const Dtype* weights, Dtype* output, bool skip_im2col) {\n",
        "void BaseConvolutionLayer<Dtype>::weight_gpu_gemm(const Dtype* input,\n"
        "    const Dtype* output, Dtype* weights) {\n",
    ]
] + [
    ("src/caffe/layers/base_conv_layer.cpp",
     "  Dtype* col_buff = col_buffer_.mutable_gpu_data();\n"
     "  if (is_1x1_) {\n"
     "    col_buff = input;\n"
     "  }\n",
     "  CHECK(!banded_) << \"stylize: net set up in CPU mode runs on the GPU; reshape it\";\n"
     "  // stylize: a 1x1 convolution's backward leaves the shared buffer alone.\n"
     "  Dtype* col_buff = is_1x1_ ? input : col_buffer_.mutable_gpu_data();\n",
     "backward_gpu_gemm refuses a banded layer; 1x1 leaves the shared buffer alone"),
]

# What the sdist's own .cu files need to compile at all.
CUDA_PATCHES += [
    ("include/caffe/layers/proposal_layer.hpp",
     "  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,\n"
     "      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);\n",
     "  virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,\n"
     "      const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {}\n",
     "ProposalLayer declares a Backward_gpu it never defines (no gradient, like its Backward_cpu)"),
    ("src/caffe/layers/proposal_layer.cu", "INSTANTIATE_LAYER_GPU_FUNCS(ProposalLayer);",
     "INSTANTIATE_LAYER_GPU_FORWARD(ProposalLayer);  // stylize: it has no Backward_gpu",
     "instantiate only the Forward_gpu that exists"),
]

# Six of the sdist's own layers declare GPU passes that no .cu file defines
# (its CPU-only build never needed them): without the declarations, Caffe's
# Layer base class runs their CPU code in GPU mode, as for any layer without
# GPU code. (header, indent of its declarations)
for header, indent in [("relu6_layer.hpp", 2), ("hardswish_layer.hpp", 2), ("hardsigmoid_layer.hpp", 2),
                       ("maxunpool_layer.hpp", 2), ("upsample_layer.hpp", 8), ("pixelshuffle_layer.hpp", 8)]:
    first, rest = " " * indent, " " * (indent + 4)
    CUDA_PATCHES += [
        (f"include/caffe/layers/{header}",
         f"{first}virtual void Forward_gpu(const vector<Blob<Dtype>*>& bottom,\n"
         f"{rest}const vector<Blob<Dtype>*>& top);\n",
         f"{first}// stylize: no Forward_gpu/Backward_gpu of its own (no .cu): the CPU code runs.\n",
         f"{header}: Forward_gpu is declared, never defined"),
        (f"include/caffe/layers/{header}",
         f"{first}virtual void Backward_gpu(const vector<Blob<Dtype>*>& top,\n"
         f"{rest}const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom);\n",
         "", f"{header}: Backward_gpu is declared, never defined"),
    ]

PATCHES = base.PATCHES + CUDA_PATCHES


def wanted_version() -> str:
    """The CPU build's key over all patches, plus this file (pins, flags, bundling)."""
    h = hashlib.sha256(base.build_key(PATCHES, base.ADDED_FILES).encode())
    h.update(Path(__file__).read_bytes())
    return f"{base.BASE_VERSION}+{h.hexdigest()[:10]}"


def cuda_prefix() -> Path:
    """The nvidia/cu13 folder the CUDA wheels install into (this interpreter's site-packages)."""
    return Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "cu13"


def ensure_cuda_wheels() -> Path:
    wanted = CUDA_BUILD_WHEELS + CUDA_RUNTIME_WHEELS
    have = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True,
                          text=True, check=True).stdout.split()
    if not set(wanted) <= set(have):
        base.run([sys.executable, "-m", "pip", "install", "-q", *wanted])
    return cuda_prefix()


def toolkit_root(cuda: Path, folder: Path) -> Path:
    """A CUDA toolkit folder as CMake's FindCUDA expects one, made of links into the wheels.

    FindCUDA looks for bin/nvcc, include/ and lib64/libcudart.so (unversioned
    names); the wheels ship only the versioned libraries.
    """
    lib = folder / "lib64"
    lib.mkdir(parents=True)
    for name in ("bin", "include", "nvvm"):
        (folder / name).symlink_to(cuda / name)
    for so in (cuda / "lib").iterdir():
        (lib / so.name).symlink_to(so)
        plain = re.sub(r"\.so\..*$", ".so", so.name)
        if plain != so.name and not (lib / plain).exists():
            (lib / plain).symlink_to(so)
    return folder


def fetch_boost_source(downloads: Path) -> tuple[Path, Path]:
    """Debian's boost1.74 source package (orig and debian tarballs), through apt, checked."""
    folder = downloads / "boost"
    files = [folder / BOOST_ORIG[0], folder / BOOST_DEBIAN[0]]
    if all(f.exists() and base.sha256_of(f) == digest
           for f, (_, digest) in zip(files, (BOOST_ORIG, BOOST_DEBIAN))):
        return files[0], files[1]
    # A private source list: the machine's apt configuration lists no deb-src.
    apt = folder / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources").mkdir(exist_ok=True)
    (apt / "sources" / "debian-src.sources").write_text(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    opts = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={apt / 'sources'}",
            "-o", f"Dir::State::Lists={apt / 'lists'}"]
    base.run(["apt-get", *opts, "update", "-qq"])
    base.run(["apt-get", *opts, "source", "--download-only", "-qq", BOOST_PACKAGE], cwd=folder)
    for f, (_, digest) in zip(files, (BOOST_ORIG, BOOST_DEBIAN)):
        if base.sha256_of(f) != digest:
            sys.exit(f"[pycaffe] {f}: not the pinned sha256 {digest}")
    return files[0], files[1]


def boost_python_library(work: Path) -> Path | None:
    """A folder holding libboost_pythonXY.so for this interpreter, or None when Debian has one."""
    tag = f"python{sys.version_info.major}{sys.version_info.minor}"
    if Path(f"/usr/lib/x86_64-linux-gnu/libboost_{tag}.so").exists():
        return None
    orig, debian = fetch_boost_source(base.cache_dir() / "downloads")
    src = work / "boost-src"
    with tarfile.open(orig) as tar:
        members = [m for m in tar if re.search(r"/libs/python/(src|include)/", m.name)]
        tar.extractall(src, members=members, filter="data")
    with tarfile.open(debian) as tar:
        tar.extractall(src, members=[m for m in tar if m.name.startswith("debian/patches/")],
                       filter="data")
    root = next(src.glob("*/libs")).parent
    for patch in BOOST_PYTHON_PATCHES:
        base.run(["patch", "-p1", "-s", "-d", str(root), "-i", str(src / "debian/patches" / patch)])
    out = work / "boost-python"
    out.mkdir()
    include = sysconfig.get_paths()["include"]
    sources = sorted(p for p in (root / "libs/python/src").rglob("*.cpp") if "numpy" not in p.parts)

    def compile_one(cpp: Path) -> Path:
        obj = out / (cpp.relative_to(root).as_posix().replace("/", "_") + ".o")
        subprocess.run(["g++", "-O2", "-fPIC", "-std=c++14", "-DNDEBUG", "-DBOOST_PYTHON_SOURCE",
                        "-DBOOST_PYTHON_DYNAMIC_LIB", f"-I{root / 'libs/python/include'}",
                        f"-I{include}", "-c", str(cpp), "-o", str(obj)],
                       check=True, stderr=subprocess.DEVNULL)
        return obj

    base.log(f"compiling Boost.Python 1.74 for {tag} ({len(sources)} files)")
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        objects = list(pool.map(compile_one, sources))
    soname = f"libboost_{tag}.so.1.74.0"
    base.run(["g++", "-shared", f"-Wl,-soname,{soname}", "-o", str(out / soname),
              *map(str, objects)])
    (out / f"libboost_{tag}.so").symlink_to(soname)
    return out


def configure_and_build(src: Path, prefix: Path) -> None:
    """The CPU build's CMake run with CUDA switched on, then its libraries bundled."""
    cuda = ensure_cuda_wheels()
    work = prefix.parent
    toolkit = toolkit_root(cuda, work / "cuda-toolkit")
    boost = boost_python_library(work)
    # The sdist ships a caffe.pb.h generated by an old protoc; for nvcc it
    # comes before the one the build generates (its include order differs).
    (src / "include/caffe/proto/caffe.pb.h").unlink()

    def cuda_args(includes: list[str]) -> list[str]:
        # Host flags are not passed on to nvcc (CMake's -std=c++14 would
        # break CCCL 3, which needs C++17): it gets its own, with the same includes.
        nvcc_flags = ["-std=c++17", "-O3", *(f"-I{i}" for i in includes),
                      f"-I{cuda / 'include'}", f"-I{cuda / 'include' / 'cccl'}"]
        return ["-DCPU_ONLY=OFF", "-DUSE_CUDNN=OFF", "-DUSE_NCCL=OFF",
                f"-DCUDA_TOOLKIT_ROOT_DIR={toolkit}", "-DCUDA_USE_STATIC_CUDA_RUNTIME=OFF",
                "-DCUDA_ARCH_NAME=Manual", f"-DCUDA_ARCH_BIN={CUDA_ARCH_BIN}", "-DCUDA_ARCH_PTX=",
                "-DCUDA_PROPAGATE_HOST_FLAGS=OFF", f"-DCUDA_NVCC_FLAGS={';'.join(nvcc_flags)}"]

    base.configure_and_build(src, prefix, extra_args=cuda_args,
                             link_dirs=[str(boost)] if boost else [],
                             logname="pycaffe-cuda-build.log")
    bundle_libraries(prefix / "python" / "caffe" / "_caffe.so",
                     search=[d for d in (boost,) if d] + [cuda / "lib", base.ensure_blas()[1]])


def linked_libraries(module: Path, search: list[Path]) -> dict[str, Path]:
    """``{soname: path}`` of every shared library ``module`` loads, as ldd resolves them."""
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(map(str, search)))
    out = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=True,
                         env=env).stdout
    found = dict(re.findall(r"^\s*(\S+) => (/\S+)", out, re.M))
    missing = re.findall(r"^\s*(\S+) => not found", out, re.M)
    if missing:
        sys.exit(f"[pycaffe] {module.name} links libraries not found: {', '.join(missing)}")
    return {name: Path(path) for name, path in found.items()}


def bundle_libraries(module: Path, search: list[Path]) -> None:
    """Copy the system libraries ``module`` needs into ``_libs`` beside it, rpaths $ORIGIN."""
    libs = module.parent / LIBS_DIR  # base.configure_and_build checked its symbols
    libs.mkdir()
    outside = [cuda_prefix(), *search[-2:]]  # CUDA wheels and OpenBLAS: found at run time
    bundled = []
    for name, path in sorted(linked_libraries(module, search).items()):
        if SYSTEM_LIBS.match(name) or any(path.is_relative_to(o) for o in outside):
            continue
        target = libs / name
        shutil.copyfile(path.resolve(), target)
        base.run(["patchelf", "--set-rpath", "$ORIGIN", str(target)])
        bundled.append(name)
    # _caffe.so: bundled libraries first, then the OpenBLAS and CUDA wheels
    # beside caffe/ in site-packages (LD_LIBRARY_PATH still overrides them).
    base.run(["patchelf", "--set-rpath",
              f"$ORIGIN/{LIBS_DIR}:$ORIGIN/../{base.BLAS_MODULE}/lib:$ORIGIN/../nvidia/cu13/lib",
              str(module)])
    size = sum(f.stat().st_size for f in libs.iterdir())
    base.log(f"bundled {len(bundled)} libraries ({size / 2**20:.1f} MiB): {' '.join(bundled)}")


def main(force: bool) -> None:
    base.APT_PACKAGES.extend(p for p in APT_PACKAGES if p not in base.APT_PACKAGES)
    base.install(DIST_NAME, wanted_version(), PATCHES, configure_and_build, RUNTIME_REQUIRES,
                 description=f"pycaffe (CUDA {CUDA_RUNTIME_WHEELS[0].split('==')[1]}, "
                             f"sm_{CUDA_ARCH_BIN}) built from {base.SDIST} by stylize",
                 package_data=["_caffe.so", f"{LIBS_DIR}/*"], force=force)
