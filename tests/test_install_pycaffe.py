"""What stylize's Caffe build leaves out (scripts/install_pycaffe.py, CUTS): checked on the real sdist
without building, and against the pycaffe that setup built and installed."""
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
import install_pycaffe as build  # noqa: E402

from stylize.backends.prototxt import parse  # noqa: E402
from stylize.backends.pycaffe import import_caffe  # noqa: E402
from stylize.backends.vgg_architecture import VGG19_BLOCKS, vgg_prototxt  # noqa: E402

from .tinynet import PROTOTXT as TINY  # noqa: E402

NETWORKS = Path(__file__).parent.parent / "stylize" / "backends" / "networks"


@pytest.fixture(scope="module")
def cut_tree(tmp_path_factory):
    """The sdist unpacked, with the CPU build's patches and cuts applied."""
    sdist = build.cache_dir() / "downloads" / build.SDIST_FILE
    if not sdist.is_file():
        pytest.skip(f"{sdist} not downloaded (scripts/install_pycaffe.py fetches it when it builds)")
    src = build.unpack_sdist(sdist, tmp_path_factory.mktemp("sdist"))
    build.apply_patches(src, build.CPU_PATCHES, build.ADDED_FILES)
    return src


def test_only_the_used_layers_and_no_solver_or_data_source_is_left_to_compile(cut_tree):
    layers = {p.name.removesuffix("_layer.cpp") for p in (cut_tree / "src/caffe/layers").glob("*.cpp")}
    assert layers == set(build.USED_LAYERS)
    sources = {p.relative_to(cut_tree).as_posix() for p in (cut_tree / "src/caffe").rglob("*.c*")}
    for gone in ("src/caffe/solver.cpp", "src/caffe/solvers/adam_solver.cpp", "src/caffe/parallel.cpp",
                 "src/caffe/data_reader.cpp", "src/caffe/util/db_lmdb.cpp", "src/caffe/util/bbox_util.cpp"):
        assert gone not in sources
    assert {"src/caffe/net.cpp", "src/caffe/util/im2col.cpp", "src/caffe/util/upgrade_proto.cpp"} <= sources
    assert not list((cut_tree / "src/caffe/layers").glob("*.cu"))  # the CPU build compiles no CUDA anyway


def test_the_bindings_of_what_is_cut_are_compiled_out(cut_tree):
    module = (cut_tree / "python/caffe/_caffe.cpp").read_text()
    live = re.sub(r"#if 0.*?#endif\n", "", module, flags=re.S)  # what the compiler sees
    for name in ("SGDSolver", "GetSolverFromFile", "MemoryDataLayer", "Net_SetInputArrays", "PythonCallback"):
        assert name in module and name not in live, name
    python = (cut_tree / "python/caffe/__init__.py").read_text() + (cut_tree / "python/caffe/pycaffe.py").read_text()
    assert "Solver" not in re.sub(r"#.*", "", python.replace("(e.g., by SGDSolver)", ""))


def test_a_cut_that_matches_nothing_or_keeps_a_missing_file_stops_the_build(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a_layer.cpp").write_text("")
    with pytest.raises(SystemExit, match="matches nothing"):
        build.remove_sources(tmp_path, build.Cut("src/*.cu", "test"))
    with pytest.raises(SystemExit, match="b_layer.cpp"):
        build.remove_sources(tmp_path, build.Cut("src/*.cpp", "test", keep=("b_layer.cpp",)))
    assert (tmp_path / "src" / "a_layer.cpp").exists()


def test_the_wheel_key_changes_with_the_cut_and_the_cuda_build_keeps_its_own():
    assert build.wanted_version() == f"{build.BASE_VERSION}+{build.build_key(build.CPU_PATCHES)}"
    fewer = [p for p in build.CPU_PATCHES if p != build.CUTS[-1]]
    kept_more = [build.Cut(c.pattern, c.why, c.keep + ("absval_layer.cpp",)) if c is build.CUTS[0] else c
                 for c in build.CPU_PATCHES]
    keys = {build.build_key(build.CPU_PATCHES), build.build_key(fewer), build.build_key(kept_more),
            build.build_key(build.PATCHES)}
    assert len(keys) == 4


def test_every_layer_of_stylizes_networks_is_in_the_installed_build():
    """The bundled GoogLeNet and CaffeNet prototxts, VGG as stylize writes it, the test networks."""
    texts = [p.read_text() for p in NETWORKS.glob("*.prototxt")] + [vgg_prototxt(VGG19_BLOCKS), TINY]
    used = {layer.type for text in texts for layer in parse(text).layer}
    assert {"Convolution", "Pooling", "LRN", "Concat", "TanH"} <= used
    assert used <= set(import_caffe().layer_type_list()) | {"Split"}  # Caffe inserts Split itself
    assert "Split" in import_caffe().layer_type_list()
