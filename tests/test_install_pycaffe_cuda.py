"""The CUDA build's script (scripts/install_pycaffe_cuda.py) on the real sdist, without building.

Its patches are applied to the unpacked ``brocolli-caffe`` sdist that setup
downloaded (each must match exactly once, or the script stops); what they
change is read back from the files. Where the CUDA build is installed
(``make setup-gpu``), its module is checked to load no system library from
outside its wheel but the ones every Linux has.
"""
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
import install_pycaffe as base  # noqa: E402
import install_pycaffe_cuda as cuda_build  # noqa: E402

from stylize.backends.cuda import is_cuda_build  # noqa: E402


@pytest.fixture(scope="module")
def sdist_tree(tmp_path_factory):
    sdist = base.cache_dir() / "downloads" / base.SDIST_FILE
    if not sdist.is_file():
        pytest.skip(f"{sdist} not downloaded (scripts/install_pycaffe.py fetches it when it builds)")
    return base.unpack_sdist(sdist, tmp_path_factory.mktemp("sdist"))


@pytest.fixture(scope="module")
def patched(sdist_tree):
    base.apply_patches(sdist_tree, cuda_build.PATCHES, base.ADDED_FILES)
    return sdist_tree


def test_every_patch_applies_once_and_lands(patched):
    for rel, old, new, why in cuda_build.CUDA_PATCHES:
        assert new in (patched / rel).read_text(), (rel, why)


def test_a_patch_that_no_longer_matches_stops_the_build(sdist_tree, tmp_path):
    rel, old, new, why = cuda_build.CUDA_PATCHES[0]
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text((sdist_tree / rel).read_text().replace(old, ""))
    with pytest.raises(SystemExit, match="does not apply"):
        base.apply_patches(tmp_path, [(rel, old, new, why)], [])


def test_cpu_only_becomes_a_choice(patched):
    text = (patched / "CMakeLists.txt").read_text()
    assert re.search(r"if\(NOT DEFINED CPU_ONLY OR CPU_ONLY\)\n\s*add_definitions\( -DCPU_ONLY=1 \)\nendif\(\)", text)
    assert "include(cmake/Cuda.cmake)" in (patched / "cmake/Dependencies.cmake").read_text()
    python = (patched / "python/CMakeLists.txt").read_text()
    assert python.index("caffe_cuda_compile(cuda_objs ${cuda})") < python.index("add_library(pycaffe SHARED")
    assert "${CUDA_CUBLAS_LIBRARIES}" in python


def test_no_device_property_removed_in_cuda_13_is_read(patched):
    common = (patched / "src/caffe/common.cpp").read_text()
    for field in ("clockRate", "deviceOverlap", "kernelExecTimeoutEnabled"):
        assert f"prop.{field}" not in common
    # The handles are skipped without a GPU, and get the TF32 switch when made.
    assert common.index("cudaGetDeviceCount(&stylize_devices)") < common.index("cublasCreate(&cublas_handle_)")
    assert common.count("stylize_math_mode(") == 3  # the definition and both cublasCreate calls


def test_gpu_gemms_refuse_banded_layers(patched):
    conv = (patched / "src/caffe/layers/base_conv_layer.cpp").read_text()
    for gemm in ("forward_gpu_gemm", "backward_gpu_gemm", "weight_gpu_gemm"):
        body = conv[conv.index(f"BaseConvolutionLayer<Dtype>::{gemm}("):]
        assert body.index("CHECK(!banded_)") < body.index("caffe_gpu_gemm"), gemm
    assert "banded_ = Caffe::mode() == Caffe::CPU" in conv


def test_the_cpu_build_is_untouched():
    """The CUDA patches come after the CPU ones, in their own list: the CPU wheel keeps its key."""
    assert cuda_build.PATCHES[:len(base.PATCHES)] == base.PATCHES
    assert not set(map(repr, cuda_build.CUDA_PATCHES)) & set(map(repr, base.PATCHES))
    assert cuda_build.wanted_version() != base.wanted_version()
    assert base.wanted_version() == f"{base.BASE_VERSION}+{base.build_key()}"


def test_toolkit_root_gives_findcuda_unversioned_names(tmp_path):
    cu13 = tmp_path / "cu13"
    for sub in ("bin", "include", "nvvm", "lib"):
        (cu13 / sub).mkdir(parents=True)
    for name in ("libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudadevrt.a"):
        (cu13 / "lib" / name).write_bytes(b"")
    root = cuda_build.toolkit_root(cu13, tmp_path / "toolkit")
    assert (root / "bin").resolve() == (cu13 / "bin").resolve()
    for plain, real in [("libcudart.so", "libcudart.so.13"), ("libcublas.so", "libcublas.so.13"),
                        ("libcurand.so", "libcurand.so.10")]:
        assert (root / "lib64" / plain).resolve() == (cu13 / "lib" / real).resolve()
    assert (root / "lib64" / "libcudadevrt.a").exists()


def test_what_is_bundled_and_what_is_not():
    keep = ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
            "libpthread.so.0", "libresolv.so.2"]
    bundle = ["libglog.so.1", "libprotobuf.so.32", "libboost_python312.so.1.74.0", "libhdf5_serial.so.103",
              "libcurl.so.4", "libcrypto.so.3"]
    assert all(cuda_build.SYSTEM_LIBS.match(name) for name in keep)
    assert not any(cuda_build.SYSTEM_LIBS.match(name) for name in bundle)


def test_linked_libraries_reads_what_the_module_loads():
    import caffe
    module = Path(caffe.__file__).parent / "_caffe.so"
    libraries = cuda_build.linked_libraries(module, search=[])
    assert "libc.so.6" in libraries and any(name.startswith("libglog") for name in libraries)
    assert all(path.is_file() for path in libraries.values())


@pytest.mark.skipif(not is_cuda_build(), reason="needs the CUDA build (make setup-gpu, .venv-cuda)")
def test_installed_cuda_module_needs_nothing_from_the_system_but_libc_and_libstdcxx():
    import caffe
    module = Path(caffe.__file__).parent / "_caffe.so"
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=True, env=env).stdout
    found = dict(re.findall(r"^\s*(\S+) => (/\S+)", out, re.M))
    assert "not found" not in out, out
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    outside = {name: path for name, path in found.items()
               if not Path(path).resolve().is_relative_to(site) and not cuda_build.SYSTEM_LIBS.match(name)}
    assert outside == {}, outside
    assert {"libcudart.so.13", "libcublas.so.13", "libcurand.so.10"} <= set(found)
    assert any(name.startswith("libboost_python") for name in found)
