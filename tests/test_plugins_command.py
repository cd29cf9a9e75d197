"""``stylize plugins``: every installed plugin with its package, listed without importing any.

Third-party plugins are simulated with real distributions on ``sys.path``
(the ``installed`` fixture of tests/test_plugins.py).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from stylize import __version__
from stylize.cli.main import cli
from stylize.core import plugins
from stylize.core.errors import PluginError
from stylize.optimizers.adam import Adam

from .test_plugins import BUILTINS, fresh_caches, installed, unique  # noqa: F401 (fixtures)


def invoke(*args: str):
    return CliRunner().invoke(cli, ["plugins", *args], prog_name="stylize")


def rows(output: str) -> dict[str, list[str]]:
    """Plugin name -> the words of its line, per listing line (first column is the name)."""
    found = {}
    for line in output.splitlines():
        if line.startswith("  ") and line.strip():
            words = line.split()
            found.setdefault(words[0], words)
    return found


def test_lists_every_builtin_with_package_version_and_docstring():
    result = invoke()
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for group, entries in BUILTINS.items():
        heading = {"stylize.backends": "backends", "stylize.losses": "losses",
                   "stylize.optimizers": "optimizers", "stylize.starts": "starts"}[group]
        assert f"{heading} ({group}):" in result.stdout
        listed = rows(result.stdout.split(f"({group}):\n", 1)[1].split("):\n", 1)[0])  # this group's rows
        for name in entries:
            assert listed[name][1:3] == ["stylize", __version__], listed[name]
            doc = plugins.load(group, name).__doc__.strip().splitlines()[0].strip()
            assert " ".join(listed[name][3:]) == " ".join(doc.split()), name


def test_groups_appear_in_order_and_names_sorted():
    out = invoke().stdout
    positions = [out.index(f"({group}):") for group in ("stylize.backends", "stylize.losses",
                                                          "stylize.optimizers", "stylize.starts")]
    assert positions == sorted(positions)
    section = out[positions[2]:positions[3]]
    names = list(rows(section))
    assert names == sorted(names) and {"lbfgs", "adam"} <= set(names)


def test_listing_imports_no_plugin():
    """In a fresh interpreter: after `stylize plugins`, no plugin module, Caffe or scipy is loaded."""
    script = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from stylize.cli.main import cli
        result = CliRunner().invoke(cli, ["plugins"])
        assert result.exit_code == 0, result.output
        assert "lbfgs" in result.output and "gram" in result.output
        loaded = [m for m in sys.modules if m.startswith(("stylize.losses.", "stylize.optimizers.",
                  "stylize.backends.", "stylize_example")) or m in ("caffe", "scipy.optimize")]
        print(",".join(loaded))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported: {done.stdout.strip()}"


def test_third_party_plugin_that_cannot_be_imported_is_still_listed(installed):
    module = unique("stylize_sleepy")
    installed("stylize-sleepy", {"stylize.losses": {"sleepy": f"{module}:Sleepy"}},
              {module: textwrap.dedent('''
                  raise ImportError("libsleepy.so: cannot open shared object file")

                  class Sleepy:
                      """Matches how sleepy the features look.

                      Longer explanation.
                      """
              ''')})
    result = invoke()
    assert result.exit_code == 0, result.output
    assert rows(result.stdout)["sleepy"] == ["sleepy", "stylize-sleepy", "1.0", "Matches", "how", "sleepy",
                                             "the", "features", "look."]
    assert module not in sys.modules  # described from its source, never run

    checked = invoke("--check")
    assert checked.exit_code == PluginError.exit_code
    assert rows(checked.stdout)["sleepy"][1] == "FAILED"
    assert "libsleepy.so" in checked.stdout
    assert rows(checked.stdout)["gram"][1] == "ok"
    assert checked.stderr.startswith("stylize: error: 1 plugin(s) failed")


def test_a_class_defined_elsewhere_is_described_by_check(installed):
    inner, outer = unique("stylize_inner"), unique("stylize_outer")
    installed("stylize-reexport", {"stylize.optimizers": {"reexported": f"{outer}:Fast"}},
              {inner: "from stylize.optimizers.lbfgs import LBFGS\n\n"
                      "class Fast(LBFGS):\n    '''A re-exported optimizer.'''\n",
               outer: f"from {inner} import Fast\n"})
    assert "no description in the source; try --check" in invoke().stdout
    checked = invoke("--check")
    assert checked.exit_code == 0, checked.output
    assert rows(checked.stdout)["reexported"] == ["reexported", "ok", "stylize-reexport", "1.0", "A",
                                                  "re-exported", "optimizer."]


def test_a_name_registered_twice_is_flagged(installed):
    installed("stylize-twin-a", {"stylize.losses": {"twin": "stylize.losses.gram:GramLoss"}})
    installed("stylize-twin-b", {"stylize.losses": {"twin": "stylize.losses.content:ContentLoss"}})
    out = invoke().stdout
    assert "stylize-twin-a 1.0" in out and "stylize-twin-b 1.0" in out
    assert out.count("CONFLICT: registered by more than one package") == 2
    checked = invoke("--check")
    assert checked.exit_code == PluginError.exit_code
    assert "more than one package (stylize-twin-a, stylize-twin-b)" in checked.stdout


def test_registrations_count_a_distribution_once(installed):
    """Also when the same distribution is on sys.path twice (a checkout beside its egg-info)."""
    found = [r for r in plugins.registrations() if r.name == "gram"]
    assert [(r.dist, r.group, r.value) for r in found] == \
        [("stylize", "stylize.losses", "stylize.losses.gram:GramLoss")]


@pytest.mark.parametrize("value, expected", [
    ("stylize.losses.gram:GramLoss", "E_l = 1/(4 N^2) * sum((G_l - A_l)^2) with normalized Grams (N channels)."),
    ("stylize.losses.gram:gram", "Normalized Gram matrix F F^T / M of CxHxW features (M = H*W positions)."),
    ("stylize.optimizers.lbfgs:LBFGS.memory_bytes",
     "Bytes this optimizer holds for ``size`` variables (history pairs dominate); ``auto`` counts float64."),
    ("stylize.core:Loss", None),  # re-exported from stylize.core.contracts: not in the source
    ("stylize.losses.gram:NoSuchClass", None),
    ("stylize.no_such_module:Thing", None),
    ("no_such_top_level_package.x:Thing", None),
])
def test_describe_reads_docstrings_from_source(value, expected):
    assert plugins.describe(value) == expected


def test_describe_follows_namespace_packages(tmp_path, monkeypatch):
    top = unique("stylize_ns")
    folder = tmp_path / top / "deeper"
    folder.mkdir(parents=True)  # no __init__.py anywhere: namespace packages
    (folder / "mod.py").write_text("class Plugin:\n    'From a namespace package.'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugins.describe(f"{top}.deeper.mod:Plugin") == "From a namespace package."
    assert top not in sys.modules


def test_help():
    result = invoke("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: stylize plugins")
    assert "--check" in result.stdout and "are not imported" in " ".join(result.stdout.split())
    assert "--options" in result.stdout


def test_entry_points_in_a_lookalike_group_are_pointed_at(installed):
    installed("stylize-histo", {"stylize.loss": {"histo": "stylize_histo:Histo"},
                                "stylize_optimizers": {"speedy": "stylize_histo:Speedy"}})
    result = invoke()
    assert result.exit_code == 0, result.output
    table, _, after = result.stdout.partition("not loaded (registered under a group stylize does not read):\n")
    assert "histo" not in rows(table) and "speedy" not in rows(table)  # (a start named fast is a built-in)
    assert after.splitlines() == [
        "  histo  'histo' is registered under 'stylize.loss' by package stylize-histo; "
        "stylize reads 'stylize.losses'",
        "  speedy  'speedy' is registered under 'stylize_optimizers' by package stylize-histo; "
        "stylize reads 'stylize.optimizers'"]


def test_no_lookalike_section_when_every_group_is_right():
    assert "not loaded" not in invoke().stdout


def option_rows(output: str, plugin: str) -> dict[str, list[str]]:
    """Option name -> [type, default, help...] from the lines under ``plugin`` in --options output."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {plugin} "))
    found = {}
    for line in lines[start + 1:]:
        if not line.startswith("    "):  # the next plugin's row, or a heading
            break
        words = line.split()
        found[words[0]] = words[1:]
    return found


def test_options_lists_each_plugins_declared_options():
    result = invoke("--options")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert option_rows(out, "adam")["lr"][:2] == ["number", "10"]
    assert " ".join(option_rows(out, "adam")["lr"][2:]) == " ".join(Adam.options[0].help.split())
    assert set(option_rows(out, "adam")) == {"lr", "beta1", "beta2", "eps", "decay", "carry", "average"}
    assert option_rows(out, "lbfgs")["history"][:2] == ["integer", "10"]
    # Losses: their own options, then the weight and layers every loss takes.
    assert list(option_rows(out, "affine")) == ["epsilon", "smooth", "weight", "layers"]
    assert option_rows(out, "affine")["epsilon"][:2] == ["number", "1e-07"]
    assert option_rows(out, "affine")["weight"][:2] == ["number", "1e+06"]  # its default_weight
    assert option_rows(out, "gram")["weight"][:2] == ["number", "--ratio"]
    assert option_rows(out, "content")["weight"][:2] == ["number", "1"]
    assert list(option_rows(out, "tv")) == ["weight", "layers"]
    assert rows(out)["gram"][1] == "ok"  # the plugins were imported and checked


def test_options_of_plugins_that_declare_none_or_nothing(installed):
    module = unique("stylize_undeclared")
    installed("stylize-undeclared", {"stylize.optimizers": {"legacy": f"{module}:Legacy",
                                                            "plain": f"{module}:Plain"},
                                     "stylize.losses": {"oldloss": f"{module}:OldLoss"}},
              {module: "from stylize.optimizers.lbfgs import LBFGS\n"
                       "from stylize.losses.content import ContentLoss\n"
                       "class Legacy(LBFGS):\n    '''Declares nothing.'''\n    options = None\n"
                       "class Plain(LBFGS):\n    '''Takes no options.'''\n    options = ()\n"
                       "class OldLoss(ContentLoss):\n    '''Declares nothing.'''\n    options = None\n"})
    out = invoke("--options").stdout
    assert list(option_rows(out, "legacy")) == ["(options"]
    assert "(options not declared: passed to the plugin unchecked)" in out
    assert list(option_rows(out, "plain")) == ["(no"]
    assert list(option_rows(out, "oldloss")) == ["weight", "layers", "(other"]


def test_options_of_a_plugin_that_fails_to_load(installed):
    module = unique("stylize_broken_opts")
    installed("stylize-broken-opts", {"stylize.losses": {"brokenopts": f"{module}:Broken"}},
              {module: "raise ImportError('libopts.so missing')\n"})
    result = invoke("--options")
    assert result.exit_code == PluginError.exit_code
    assert rows(result.stdout)["brokenopts"][1] == "FAILED"
    assert "libopts.so" in result.stdout
