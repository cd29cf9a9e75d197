"""The one place that imports pycaffe: quietly, and with a useful error when it is missing."""
import os

from stylize.core import ModelError

from . import bf16


def import_caffe():
    """Import pycaffe quietly, or explain how to get it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe logs every layer otherwise
    bf16.preload()  # before _caffe.so binds its sgemm (stylize.backends.bf16)
    try:
        import caffe
    except ImportError as e:
        raise ModelError(f"pycaffe is not installed ({e}); run `make setup` in the stylize "
                         "checkout, or scripts/install_pycaffe.py with this Python") from None
    caffe.set_mode_cpu()
    return caffe
