"""Contract tests for plugin authors: subclass, set a few attributes, run pytest.

Each class holds the tests every plugin of its kind must pass: the promises
of ``stylize.core.contracts`` that the pipeline relies on, checked
numerically. Name your subclass ``Test...`` so pytest collects it::

    from stylize.testing import LossContract, OptimizerContract
    from stylize_example.meanstd import MeanStdLoss
    from stylize_example.spg import SPG

    class TestMeanStd(LossContract):
        loss_class = MeanStdLoss

    class TestSPG(OptimizerContract):
        optimizer_class = SPG

Override the attributes (tolerances, shapes, options) or the ``make_*`` and
``sample_*`` methods where your plugin needs it; a test that does not apply
to your plugin can be switched off by an attribute (see each class) or by
overriding it with ``pass``.

This package needs pytest, which stylize itself does not depend on: import it
only from tests.

One module per contract (``loss``, ``optimizer``, ``backend``, ``start``)
and the checks they share (``checks``); every public name is importable
from ``stylize.testing`` itself.
"""
from .backend import BackendContract
from .checks import check_declared_options, gradient_errors
from .loss import LossContract
from .optimizer import OptimizerContract
from .start import StartContract

__all__ = ["BackendContract", "LossContract", "OptimizerContract", "StartContract", "check_declared_options",
           "gradient_errors"]
