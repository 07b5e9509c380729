"""The docs: the site builds strictly (no broken link, no stale API reference), every link resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The one place outside the repository that docs may name: the data folder the Makefile reads
# (DATA ?= ../shared/data; INSTRUCTOR_DATA elsewhere). It is input, not documentation.
DATA_FOLDER = "../shared/data"

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
CODE_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
MD_PATH_IN_CODE = re.compile(r"`([^`\s]+\.md)`")


def doc_files() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets that point into the file tree (no scheme, not a bare #anchor), outside code blocks."""
    text = CODE_BLOCK.sub("", text)
    targets = LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def broken_links(page: Path) -> list[str]:
    """``"README.md -> ../x.md"`` for each relative link of ``page`` that leaves the repo or names no file."""
    out = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            out.append(f"{page.relative_to(REPO)} -> {target}")
    return out


def test_link_finder_sees_links_and_skips_urls_and_code():
    text = '[a](docs/a.md) ![img](pic.png "t") [w](https://x.org/y.md) [s](#top)\n```\n[c](in_code.md)\n```\n'
    text += "[ref]: ../outside.md\n"
    assert relative_links(text) == ["docs/a.md", "pic.png", "../outside.md"]


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repo(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_named_md_files_stay_inside_the_repo(page):
    # A page named in code (`docs/cli.md`) is a pointer too: it must not lead out of the checkout.
    outside = []
    for name in MD_PATH_IN_CODE.findall(page.read_text(encoding="utf-8")):
        if name.startswith(DATA_FOLDER + "/"):
            continue
        if not any((base / name).resolve().is_relative_to(REPO) for base in (page.parent, REPO)):
            outside.append(name)
    assert outside == []


def test_mkdocs_nav_lists_every_page():
    import yaml

    class Loader(yaml.SafeLoader):
        """Reads mkdocs.yml's ``!!python/name:`` tags (Material's emoji, for one) as plain nodes."""

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506

    def pages(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        return [p for item in node for p in pages(item)]

    listed = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert on_disk - listed == set(), "pages missing from mkdocs.yml's nav"
    assert listed - on_disk == set(), "nav entries without a page"


def test_mkdocs_build_strict(tmp_path):
    """A broken link, a missing page, a stale ``::: module.name`` or a docstring griffe cannot
    parse is a warning, and ``--strict`` turns every warning into a failed build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "api" / "core" / "index.html").is_file()
    reference = (tmp_path / "api" / "core" / "index.html").read_text(encoding="utf-8")
    assert 'id="instructor_core.InstructorEncoder.from_pretrained"' in reference
    # issue 24: the page's introduction once (the module docstring), and a search box with its index
    assert reference.count("No LangChain,") == 1
    assert 'class="md-search__input"' in reference
    assert (tmp_path / "search" / "search_index.json").is_file()


# A time of day in a measurement note ("13:36-13:58 UTC", "`uptime` 13:35:47"): docs say what was
# measured and how, not when; git keeps the history.
CLOCK_TIME = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*-\s*\d{1,2}:\d{2}(?::\d{2})?)?\s*UTC\b|`uptime` \d{1,2}:\d{2}"
)


def test_clock_time_finder():
    assert CLOCK_TIME.search("ran 2026-11-27 13:36-13:58 UTC on") and CLOCK_TIME.search("at 06:11 UTC")
    assert CLOCK_TIME.search("(`uptime` 13:35:47 `load average")
    assert not CLOCK_TIME.search("created: 2026-11-27T12:40:03+00:00") and not CLOCK_TIME.search("2 min 34 s")


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_clock_times(page):
    assert CLOCK_TIME.findall(page.read_text(encoding="utf-8")) == []
