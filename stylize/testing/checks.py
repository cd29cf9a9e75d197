"""Checks every contract test shares: gradients against finite differences, declared options against the constructor."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np
import pytest

from stylize.core.errors import UsageError
from stylize.core.contracts.options import Option

#: An option no plugin has: plugins must accept and ignore options meant for others.
UNKNOWN_OPTION = "stylize_contract_unknown_option"


def gradient_errors(f, x: np.ndarray, grad: np.ndarray, eps: float, count: int = 20,
                    seed: int = 0) -> np.ndarray:
    """Relative errors of ``grad`` against central differences of ``f`` at ``count`` random coordinates.

    Each error is relative to the coordinate's own derivative, but never to
    less than a tenth of the mean gradient magnitude: where a derivative is
    nearly zero, rounding alone would otherwise look like a large error.
    """
    rng = np.random.default_rng(seed)
    floor = 0.1 * float(np.abs(grad).mean()) or 1e-12
    errors = []
    for index in rng.choice(x.size, size=min(count, x.size), replace=False):
        step = np.zeros_like(x)
        step.flat[index] = eps
        numeric = (float(f(x + step)) - float(f(x - step))) / (2 * eps)
        analytic = float(grad.flat[index])
        errors.append(abs(numeric - analytic) / max(floor, abs(numeric) + abs(analytic)))
    return np.array(errors)


def check_declared_options(plugin: type, construct: Callable[..., Any] | None = None,
                           reserved: Sequence[str] = ()) -> None:
    """What a plugin's ``options`` declaration promises (skipped when it declares none).

    Every entry is an ``Option``; names are unique and none is ``reserved``
    (taken by the pipeline); every default passes ``Option.convert`` unchanged
    and equals the constructor's default for that keyword, where the
    constructor names it; ``construct(**defaults)``, when given, accepts them all.
    """
    options = getattr(plugin, "options", None)
    if options is None:
        pytest.skip(f"{plugin.__name__} declares no options (options = None: passed on unchecked)")
    assert not isinstance(options, (str, Option)) and all(isinstance(o, Option) for o in options), \
        f"{plugin.__name__}.options must be a sequence of stylize.core.Option, got {options!r}"
    names = [option.name for option in options]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"options declared twice: {twice}"
    clash = sorted(set(names) & set(reserved))
    assert not clash, f"{clash} are every plugin's of this kind (the pipeline takes them): do not declare them"
    try:
        parameters = inspect.signature(plugin).parameters
    except (TypeError, ValueError):
        parameters = {}
    for option in options:
        where = f"{plugin.__name__}.{option.name}"
        try:
            converted = option.convert(option.default, where)
        except UsageError as e:
            raise AssertionError(f"the default of {where} is refused by its own declaration: {e}") from None
        assert converted == option.default, \
            f"the default of {where}, {option.default!r}, converts to {converted!r}: declare it as its type"
        parameter = parameters.get(option.name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            assert parameter.default == option.default, \
                f"{where} is declared with default {option.default!r}, the constructor's is {parameter.default!r}"
    if construct is not None:
        construct(**{option.name: option.default for option in options})
