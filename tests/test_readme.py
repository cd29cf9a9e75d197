"""The README as a front door: short, a picture and the two commands first, links that resolve,
and an options table that says what `stylize run` itself declares."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The pages whose relative links are checked: the README, every page it leads to, and the
#: other top-level guides that link into them.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md", ROOT / "plugins.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def headings(path: Path) -> set[str]:
    """GitHub's anchors of a markdown file's headings (outside code blocks)."""
    anchors, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # not the examples in code blocks
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT)}")
        elif anchor and resolved.suffix == ".md" and anchor not in headings(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_first_screen_shows_a_picture_and_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move details to docs/"
    first_screen = "\n".join(lines[:30])
    picture = re.search(r"!\[[^\]]+\]\(([^)]+)\)", first_screen)
    assert picture and (ROOT / picture.group(1)).is_file()
    assert "`make demo`" in first_screen and "`make test`" in first_screen


def test_each_way_to_run_it_has_its_own_page():
    text = README.read_text()
    ways = text.split("## Ways to run it", 1)[1].split("\n## ", 1)[0]
    sections = re.split(r"\n### ", ways)[1:]
    assert len(sections) >= 6
    for section in sections:
        pages = [t for t in LINK.findall(section) if t.startswith("docs/") and t.endswith(".md")]
        assert pages, f"section {section.splitlines()[0]!r} links no page of its own"


def expected_default(param: click.Option) -> str:
    """How the README's table names an option's default: what `stylize run` itself declares."""
    from stylize.core.request.presets import QUALITIES
    if param.name == "quality":  # its default is the quality that changes nothing
        return next(name for name, values in QUALITIES.items() if not values)
    if param.is_flag:
        return "off"
    return "none" if param.default is None else str(param.default)


def test_the_options_table_says_what_stylize_run_declares():
    from stylize.cli.run import run
    params = {opt: p for p in run.params if isinstance(p, click.Option) for opt in p.opts}
    table = README.read_text().split("<!-- options:", 1)[1].split("\n\n", 1)[0]
    rows = [row.split("|")[1:3] for row in table.splitlines() if row.startswith("| `")]
    assert len(rows) == 6
    for option_cell, default_cell in rows:
        flags = re.findall(r"-[-\w]+", option_cell.split("`")[1].replace("/", " "))
        declared = {params[flag].name for flag in flags if flag in params}
        assert len(declared) == 1 and len(flags) == len(params[flags[0]].opts), (option_cell, flags)
        param = params[flags[0]]
        default = default_cell.strip().strip("`")
        wanted = expected_default(param)
        try:
            same = float(default) == float(wanted)
        except ValueError:
            same = default == wanted
        assert same, f"{option_cell.strip()}: README says {default}, `stylize run` declares {wanted}"
