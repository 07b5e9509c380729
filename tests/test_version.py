"""One version source: the package's ``__version__`` is the distribution's version."""

from __future__ import annotations

import importlib.metadata

import pytest

import instructor_core
from tests.conftest import REPO


def test_version_is_the_installed_distributions():
    assert instructor_core.__version__ == importlib.metadata.version("instructor")


def test_pyproject_takes_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "instructor_core.version.__version__"}
