"""These tests run against the installed distribution, as users get it (entry points included)."""
import importlib.util

import pytest

if importlib.util.find_spec("stylize_example") is None:
    raise pytest.UsageError(
        "stylize-example-plugin is not installed: `pip install examples/stylize-example-plugin` "
        "(stylize's `make test` installs it)")
