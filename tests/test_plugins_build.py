"""A run's plugins found and made in one place (``stylize.core.plugins.build``): validation and the run agree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.core import plugins
from stylize.core.errors import PluginError
from stylize.core.request.settings import Settings
from stylize.losses.content import ContentLoss
from stylize.optimizers.adam import Adam

from .test_plugins import fresh_caches, installed, unique  # noqa: F401 (fixtures)

CORE = Path(__file__).resolve().parent.parent / "stylize" / "core"


def loads_plugins(path: Path) -> list[str]:
    """Where ``path`` loads a plugin itself: ``plugins.load(...)``, or ``load`` imported from the plugins package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "plugins":
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom) and "plugins" in (node.module or "") \
                and any(alias.name == "load" for alias in node.names):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_core_loads_plugins_only_through_the_plugins_package():
    """Settings' validation, the objective, the pipeline and the start use ``plugins.build``'s functions."""
    found = [where for path in sorted(CORE.rglob("*.py")) if CORE / "plugins" not in path.parents
             for where in loads_plugins(path)]
    assert not found, f"plugins loaded outside stylize/core/plugins: {found}"
    sample = CORE.parent.parent / "tests" / "test_plugins.py"  # the check sees a plain plugins.load(...)
    assert loads_plugins(sample)


def test_content_joins_a_run_without_a_content_term():
    assert list(plugins.loss_classes(Settings(losses=["gram"]))) == ["content", "gram"]
    assert list(plugins.loss_classes(Settings(losses=["gram", "content", "gram"]))) == ["gram", "content"]
    assert plugins.loss_classes(Settings(losses=["tv"]))["content"] is ContentLoss


def test_another_content_loss_stands_in_for_content_and_content_still_takes_options(installed, tiny):
    module = unique("stylize_own_content")
    installed("stylize-own-content", {"stylize.losses": {"own": f"{module}:Own"}},
              {module: "from stylize.losses.content import ContentLoss\nclass Own(ContentLoss):\n    pass\n"})
    settings = Settings(**{**tiny, "losses": ["own", "gram"],
                           "options": {**tiny["options"], "content": {"weight": 2}}})
    assert list(plugins.loss_classes(settings)) == ["own", "gram"]
    settings.validate()  # as before validation and the run shared this lookup: content's options are taken
    assert settings.options["content"] == {"weight": 2.0}


def test_an_unknown_loss_is_the_same_one_line_error_for_validation_and_the_run(tiny):
    settings = Settings(**{**tiny, "losses": ["gramm"]})
    with pytest.raises(PluginError) as run:
        plugins.loss_classes(settings)
    with pytest.raises(PluginError) as validation:
        settings.validate()
    assert str(run.value) == str(validation.value) and "did you mean 'gram'?" in str(run.value)
    assert "\n" not in str(run.value)


def test_each_plugin_is_made_with_its_own_options(tiny):
    settings = Settings(**{**tiny, "optimizer": "adam", "threads": 2,
                           "options": {**tiny["options"], "adam": {"lr": 2.5}}})
    assert plugins.optimizer_class(settings) is Adam
    optimizer = plugins.make_optimizer(settings)
    assert isinstance(optimizer, Adam) and optimizer.lr == 2.5
    assert plugins.backend_class(settings) is CaffeBackend
    backend = plugins.make_backend(settings, ["conv2", "conv1", "conv2"])
    assert isinstance(backend, CaffeBackend) and backend.layers == ("conv1", "conv2")  # each once, sorted
    assert plugins.start_class(Settings(init="noise"))[0] == "noise"
    assert plugins.make_start(Settings(init="noise", options={"noise": {"exponent": 2.0}})).exponent == 2.0
    assert plugins.start_class(Settings(init="no/such/picture.png"))[0] == plugins.FILE
