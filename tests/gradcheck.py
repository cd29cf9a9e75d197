"""Finite-difference checks of analytic gradients: the same helper plugin authors get."""
from stylize.testing import gradient_errors as coordinate_check

__all__ = ["coordinate_check"]
