"""The README and the documentation site under ``docs/``. ``bin/test`` builds the site with ``mkdocs
build --strict``, which fails on a link to a missing page or anchor between the pages, and on a page
left out of the nav. The README is not a page of the site, so its links are checked here, with the
same Markdown parser and extensions mkdocs renders with (Python-Markdown's ``toc`` gives each
heading its id); and the README lists every page and section, so that the pointers in the code and
the stack files ("README, <section>") still lead to them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import markdown
import pytest
import yaml

from platformctl.adapters.engine import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
MAX_README_LINES = 300
"""What the README is held to: the project, the two commands, the layout and where to read on."""
MKDOCS_BUILTIN_EXTENSIONS = ("toc", "tables", "fenced_code")
"""What mkdocs adds to ``markdown_extensions`` by itself (mkdocs/config/defaults.py)."""
HREF = re.compile(r'<a (?![^>]*class="headerlink")[^>]*href="([^"]*)"')
"""A link's target, not the permalink ``toc`` puts after each heading."""
HEADING_ID = re.compile(r'<h[1-6] id="([^"]*)"')


def render(text: str) -> str:
    """``text`` as HTML, rendered as mkdocs renders a page: its built-in extensions and mkdocs.yml's."""
    names: list[str] = list(MKDOCS_BUILTIN_EXTENSIONS)
    configs: dict[str, dict[str, Any]] = {}
    for entry in yaml.safe_load(MKDOCS.read_text())["markdown_extensions"]:
        name, config = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        if name not in names:
            names.append(name)
        if config:
            configs[name] = config
    return markdown.Markdown(extensions=names, extension_configs=configs).convert(text)


def anchors(page: Path) -> set[str]:
    """The ids of ``page``'s headings, the anchors a link may name."""
    return set(HEADING_ID.findall(render(page.read_text())))


def internal_links(page: Path) -> list[str]:
    """The link targets in ``page`` that are not on another site, in order (code is not linked)."""
    return [href for href in HREF.findall(render(page.read_text())) if not urlsplit(href).scheme]


def broken_links(page: Path) -> list[str]:
    """Each internal link of ``page`` whose file is missing, or whose anchor that file has no heading
    for, with what is wrong."""
    broken = []
    for href in internal_links(page):
        path, _, anchor = href.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_file():
            broken.append(f"{href}: no file {path}")
        elif anchor and anchor not in anchors(target):
            broken.append(f"{href}: {path or page.name} has no heading #{anchor}")
    return broken


def nav_pages() -> list[Path]:
    """The site's pages, in the order of mkdocs.yml's nav."""
    return [DOCS / entry for entry in yaml.safe_load(MKDOCS.read_text())["nav"]]


def unlisted(readme: Path, pages: list[Path]) -> list[str]:
    """Each page (``docs/<page>``) and section (``docs/<page>#<anchor>``) of ``pages`` that ``readme``
    links to nowhere; a page's own title is the page."""
    linked = set(internal_links(readme))
    missing = []
    for page in pages:
        link = page.relative_to(readme.parent).as_posix()
        _title, *sections = HEADING_ID.findall(render(page.read_text()))
        missing += [target for target in (link, *(f"{link}#{anchor}" for anchor in sections))
                    if target not in linked]
    return missing


def sh_block(text: str, after: str) -> str:
    """The first ``sh`` block after the line ``after``."""
    rest = text[text.index(f"{after}\n"):]
    return rest[rest.index("```sh\n"):rest.index("\n```\n", rest.index("```sh\n")) + 4]


def test_every_internal_link_of_the_readme_resolves() -> None:
    assert internal_links(README) != []
    assert broken_links(README) == []


def test_a_missing_file_or_heading_is_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n### Vault's CA\n\n```yaml\n# not a heading\n```\n")
    (tmp_path / "README.md").write_text(
        "# Readme\n\n[a](docs/page.md) [b](docs/page.md#vaults-ca) [c](#readme) [d](https://example.com/x.md)\n"
        "[e](docs/gone.md) [f](docs/page.md#not-a-heading) [g](#nowhere) `[h](docs/gone.md)`\n")
    assert broken_links(tmp_path / "README.md") == [
        "docs/gone.md: no file docs/gone.md",
        "docs/page.md#not-a-heading: docs/page.md has no heading #not-a-heading",
        "#nowhere: README.md has no heading #nowhere"]


def test_the_readme_links_every_page_and_section_of_the_site() -> None:
    assert unlisted(README, [page for page in nav_pages() if page.name != "index.md"]) == []


def test_a_page_or_section_the_readme_does_not_link_is_named(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rotation.md").write_text("# Rotation\n\n### Static roles\n\n#### Per tier\n")
    (tmp_path / "docs" / "aws.md").write_text("# AWS\n")
    (tmp_path / "README.md").write_text("- [Rotation](docs/rotation.md)\n"
                                        "  - [Static roles](docs/rotation.md#static-roles)\n")
    assert unlisted(tmp_path / "README.md", [tmp_path / "docs" / "rotation.md", tmp_path / "docs" / "aws.md"]) == [
        "docs/rotation.md#per-tier", "docs/aws.md"]


def test_the_readme_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_the_two_commands_are_the_same_in_the_readme_and_on_their_page() -> None:
    readme = sh_block(README.read_text(), "## The two commands")
    assert readme.splitlines()[1:] == [
        "bin/plan dev     # sets up ./venv from the pinned requirements, then prints what the dev stack declares",
        "bin/test         # every check: ruff, mypy, the whole test suite (starts its own PostgreSQL), and the",
        "                 # end-to-end tests under the real Pulumi CLI when its tools are here",
        "```"]
    assert sh_block((DOCS / "the-two-commands.md").read_text(), "# The two commands") == readme


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_each_page_is_one_section_under_its_title(page: Path) -> None:
    """One title (``# ...``) per page, first; the sections under it keep the README's ``###``."""
    titles = re.findall(r'<h1 id="[^"]*">', render(page.read_text()))
    assert (page.read_text().startswith("# "), len(titles)) == (True, 1)
