"""stylize.core.plugins: names, loading, and loud failures, through real entry points.

Third-party plugins are simulated with real distributions: a ``*.dist-info``
folder (METADATA + entry_points.txt) and a module, in a temporary folder put
on ``sys.path``. stevedore caches entry points twice (a class-level dict
keyed by group, and JSON files keyed by a hash of ``sys.path``), so the
``installed`` fixture gives each test fresh, private caches.
"""
from __future__ import annotations

import configparser
import importlib
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from stevedore import _cache, extension

from stylize.cli.main import cli
from stylize.core import plugins
from stylize.core.contracts import Backend, Loss, Optimizer, StartImage
from stylize.core.errors import PluginError

SETUP_CFG = Path(__file__).resolve().parent.parent / "setup.cfg"


def builtins() -> dict[str, dict[str, str]]:
    """setup.cfg's entry points: group -> {name: "module:Class"}."""
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    groups = {}
    for group in plugins.GROUPS:
        lines = cfg["options.entry_points"][group].strip().splitlines()
        groups[group] = dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)
    return groups


BUILTINS = builtins()
BUILTIN_PAIRS = [(group, name) for group, entries in BUILTINS.items() for name in entries]


@pytest.fixture
def fresh_caches(monkeypatch, tmp_path):
    """Empty in-memory entry-point caches and a private, write-disabled disk cache."""
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})
    monkeypatch.setattr(_cache._c, "_internal", {})
    monkeypatch.setattr(_cache._c, "_dir", str(tmp_path / "entrypoint-cache"))
    monkeypatch.setattr(_cache._c, "_disable_caching", True)


@pytest.fixture
def installed(monkeypatch, tmp_path, fresh_caches):
    """``installed(dist_name, entry_points={group: {name: value}}, modules={name: source})``.

    Call it any number of times before the code under test reads entry points.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    added_modules = []

    def install(dist: str, entry_points: dict[str, dict[str, str]],
                modules: dict[str, str] | None = None) -> None:
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        text = "".join(f"[{group}]\n" + "".join(f"{n} = {v}\n" for n, v in eps.items()) + "\n"
                       for group, eps in entry_points.items())
        (info / "entry_points.txt").write_text(text)
        for name, source in (modules or {}).items():
            (site / f"{name}.py").write_text(source)
            added_modules.append(name)
        importlib.invalidate_caches()

    yield install
    for name in added_modules:
        sys.modules.pop(name, None)


def unique(prefix: str) -> str:
    """A module name no other test (or earlier import) has used."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# -- the built-ins --------------------------------------------------------------

def test_setup_cfg_declares_the_expected_builtins():
    assert set(BUILTINS["stylize.backends"]) == {"caffe", "caffe-vgg19", "caffe-vgg16", "caffe-googlenet",
                                                 "caffe-caffenet"}
    assert set(BUILTINS["stylize.losses"]) == {"content", "gram", "meancov", "tv", "affine", "temporal"}
    assert set(BUILTINS["stylize.optimizers"]) == {"lbfgs", "adam"}
    assert {"content", "style", "noise", "file"} <= set(BUILTINS["stylize.starts"])  # colour transfers join them


@pytest.mark.parametrize("group", sorted(BUILTINS))
def test_names_lists_the_builtins(group):
    found = plugins.names(group)
    assert set(BUILTINS[group]) <= set(found)
    assert found == sorted(set(found))


@pytest.mark.parametrize("group", sorted(BUILTINS))
def test_entry_points_match_setup_cfg(group):
    values = {ep.name: ep.value for ep in plugins.entry_points(group)}
    for name, value in BUILTINS[group].items():
        assert values[name] == value


@pytest.mark.parametrize("group, name", BUILTIN_PAIRS)
def test_load_returns_the_class_implementing_the_contract(group, name):
    cls = plugins.load(group, name)
    module, _, qualname = BUILTINS[group][name].partition(":")
    assert isinstance(cls, type)
    assert cls is getattr(importlib.import_module(module), qualname)
    assert issubclass(cls, plugins.GROUPS[group])


def test_groups_map_to_the_four_contracts():
    assert plugins.GROUPS == {"stylize.backends": Backend, "stylize.losses": Loss,
                              "stylize.optimizers": Optimizer, "stylize.starts": StartImage}


def test_loss_roles_cover_content_and_style():
    assert plugins.load("stylize.losses", "content").role == "content"
    assert plugins.load("stylize.losses", "gram").role == "style"


def test_names_of_an_empty_group():
    assert plugins.names("stylize.nothing-registered-here") == []


# -- unknown names --------------------------------------------------------------

@pytest.mark.parametrize("group, typo, suggestion", [
    ("stylize.losses", "gramm", "gram"),
    ("stylize.losses", "Gram", "gram"),
    ("stylize.losses", "contnet", "content"),
    ("stylize.optimizers", "lbfg", "lbfgs"),
    ("stylize.optimizers", "LBFGS", "lbfgs"),
    ("stylize.backends", "caffe-vgg", "caffe-vgg19"),
    ("stylize.backends", "vgg19", "caffe-vgg19"),
])
def test_unknown_name_suggests_the_closest(group, typo, suggestion):
    with pytest.raises(PluginError) as info:
        plugins.load(group, typo)
    message = str(info.value)
    assert f"did you mean {suggestion!r}?" in message
    assert repr(typo) in message
    assert plugins.KIND[group] in message
    for name in BUILTINS[group]:
        assert name in message  # lists what is installed
    assert "\n" not in message
    assert info.value.exit_code == PluginError.exit_code == 5


def test_unknown_name_without_a_close_match_lists_installed():
    with pytest.raises(PluginError) as info:
        plugins.load("stylize.losses", "zzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    listed = message.split("installed: ", 1)[1].rstrip(")").split(", ")
    assert set(BUILTINS["stylize.losses"]) <= set(listed) and listed == sorted(listed)


# -- third-party plugins through real distributions ----------------------------

def test_fresh_caches_see_a_new_distribution(installed):
    module = unique("stylize_extra_loss")
    installed("stylize-extra", {"stylize.losses": {"extra": f"{module}:Extra"}},
              {module: "from stylize.losses.gram import GramLoss\n"
                       "class Extra(GramLoss):\n    pass\n"})
    assert "extra" in plugins.names("stylize.losses")
    assert {"content", "gram"} <= set(plugins.names("stylize.losses"))
    cls = plugins.load("stylize.losses", "extra")
    assert cls.__name__ == "Extra" and cls.__module__ == module
    assert issubclass(cls, Loss)


def test_plugin_that_fails_to_import_names_plugin_and_distribution(installed):
    module = unique("stylize_broken_loss")
    installed("stylize-broken", {"stylize.losses": {"broken": f"{module}:Broken"}},
              {module: "raise ImportError('libfoo.so.3: cannot open shared object file')\n"})
    assert "broken" in plugins.names("stylize.losses")  # listing imports nothing
    with pytest.raises(PluginError) as info:
        plugins.load("stylize.losses", "broken")
    message = str(info.value)
    assert "'broken'" in message
    assert "stylize-broken" in message
    assert "failed to load" in message
    assert "libfoo.so.3" in message
    assert "\n" not in message


def test_plugin_pointing_at_a_missing_module_is_a_plugin_error(installed):
    installed("stylize-ghost", {"stylize.optimizers": {"ghost": f"{unique('nowhere')}:Ghost"}})
    with pytest.raises(PluginError, match=r"plugin 'ghost' from stylize-ghost failed to load: "
                                          r"ModuleNotFoundError"):
        plugins.load("stylize.optimizers", "ghost")


def test_plugin_raising_any_exception_on_import_is_a_plugin_error(installed):
    module = unique("stylize_crashing")
    installed("stylize-crashing", {"stylize.backends": {"crash": f"{module}:Net"}},
              {module: "1 / 0\n"})
    with pytest.raises(PluginError, match="'crash'.*ZeroDivisionError"):
        plugins.load("stylize.backends", "crash")


def test_a_broken_plugin_does_not_break_the_others(installed):
    module = unique("stylize_broken_other")
    installed("stylize-broken-other", {"stylize.losses": {"broken": f"{module}:Broken"}},
              {module: "raise ImportError('nope')\n"})
    assert plugins.load("stylize.losses", "gram").__name__ == "GramLoss"
    assert sys.modules.get(module) is None  # never imported


def test_plugin_not_implementing_the_contract(installed):
    module = unique("stylize_wrong")
    installed("stylize-wrong", {"stylize.losses": {"wrong": f"{module}:NotALoss",
                                                   "func": f"{module}:function"}},
              {module: "class NotALoss:\n    pass\n\ndef function():\n    pass\n"})
    with pytest.raises(PluginError) as info:
        plugins.load("stylize.losses", "wrong")
    assert "'wrong'" in str(info.value)
    assert "stylize-wrong" in str(info.value)
    assert "does not implement stylize.core.Loss" in str(info.value)
    with pytest.raises(PluginError, match="does not implement"):
        plugins.load("stylize.losses", "func")


def test_a_name_registered_twice_is_an_error(installed):
    installed("stylize-dup-a", {"stylize.losses": {"dupe": "stylize.losses.gram:GramLoss"}})
    installed("stylize-dup-b", {"stylize.losses": {"dupe": "stylize.losses.content:ContentLoss"}})
    assert plugins.names("stylize.losses").count("dupe") == 1
    with pytest.raises(PluginError) as info:
        plugins.load("stylize.losses", "dupe")
    message = str(info.value)
    assert "'dupe'" in message
    assert "more than one package" in message
    assert "stylize-dup-a" in message and "stylize-dup-b" in message
    assert "\n" not in message


def test_shadowing_a_builtin_is_an_error(installed):
    installed("stylize-shadow", {"stylize.losses": {"gram": "stylize.losses.content:ContentLoss"}})
    with pytest.raises(PluginError, match=r"'gram' is registered by more than one package "
                                          r"\(.*stylize-shadow.*\)"):
        plugins.load("stylize.losses", "gram")
    # The other names of the group are unaffected.
    assert plugins.load("stylize.losses", "content").__name__ == "ContentLoss"


def test_cli_reports_a_broken_plugin_in_one_line(installed, tmp_path):
    """The same failure through `stylize run`: one line, the plugin error's exit code."""
    import numpy as np
    from PIL import Image

    module = unique("stylize_broken_cli")
    installed("stylize-broken-cli", {"stylize.losses": {"broken": f"{module}:Broken"}},
              {module: "raise ImportError('needs libbar')\n"})
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "c.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "-c", str(tmp_path / "c.png"), "-s", str(tmp_path / "c.png"),
                                      "-o", str(out / "o.png"), "--loss", "broken", "-q"])
    assert result.exit_code == PluginError.exit_code
    assert result.stderr.startswith("stylize: error: plugin 'broken' from stylize-broken-cli")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert not out.exists()


# -- entry points under a group that only looks like stylize's ------------------

@pytest.mark.parametrize("group, meant", [
    ("stylize.loss", "stylize.losses"),
    ("stylize_losses", "stylize.losses"),
    ("stylise.losses", "stylize.losses"),
    ("stylize.optimiser", "stylize.optimizers"),
    ("stylize.optimizer", "stylize.optimizers"),
    ("Stylize.Backends", "stylize.backends"),
    ("stylize-backend", "stylize.backends"),
])
def test_lookalike_groups(group, meant):
    assert plugins.lookalike(group) == meant


@pytest.mark.parametrize("group", [*plugins.GROUPS, "console_scripts", "pytest11", "stylize.presets",
                                   "stylize.cli", "stylize"])
def test_groups_that_look_like_nothing(group):
    assert plugins.lookalike(group) is None


def test_misregistrations_are_read_without_importing(installed):
    module = unique("stylize_astray")
    installed("stylize-astray", {"stylize.loss": {"histo": f"{module}:Histo"},
                                 "Stylize.Optimizers": {"fast": f"{module}:Fast"},
                                 "console_scripts": {"astray": f"{module}:main"}},
              {module: "raise ImportError('never imported')\n"})
    found = [(reg.group, reg.name, reg.dist, meant) for reg, meant in plugins.misregistrations()
             if reg.dist == "stylize-astray"]
    assert found == [("stylize.loss", "histo", "stylize-astray", "stylize.losses"),
                     ("Stylize.Optimizers", "fast", "stylize-astray", "stylize.optimizers")]
    assert "histo" not in plugins.names("stylize.losses")  # stylize still reads only its groups
    assert module not in sys.modules


def test_loading_a_name_registered_under_a_lookalike_group_says_where_it_is(installed):
    module = unique("stylize_misgrouped")
    installed("stylize-misgrouped", {"stylize.loss": {"histo": f"{module}:Histo"}},
              {module: "raise ImportError('never imported')\n"})
    with pytest.raises(PluginError) as info:
        plugins.load("stylize.losses", "histo")
    message = str(info.value)
    assert message.startswith("unknown loss 'histo' (installed: ")
    assert message.endswith("'histo' is registered under 'stylize.loss' by package stylize-misgrouped; "
                            "stylize reads 'stylize.losses'")
    assert "\n" not in message
    with pytest.raises(PluginError, match="did you mean 'lbfgs'") as other:
        plugins.load("stylize.optimizers", "lbfg")  # another group's look-alike is not this one's
    assert "stylize.loss'" not in str(other.value)
