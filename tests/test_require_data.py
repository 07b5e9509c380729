"""A missing shared data folder skips the real-data tests, except in CI where it fails them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, REQUIRE_DATA_VARIABLE

PROBE = "def test_needs_the_shared_data(data_dir):\n    assert data_dir.is_dir()\n"


def run_probe(tmp_path, require: str | None) -> subprocess.CompletedProcess:
    """Run a one-test suite that asks for ``data_dir`` while INSTRUCTOR_DATA names an empty folder."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    (tmp_path / "conftest.py").write_text("from tests.conftest import data_dir  # noqa: F401\n", encoding="utf-8")
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_DATA_VARIABLE}
    # no third-party plugins: langsmith's alone takes seconds to import, and the probe needs none
    env.update(INSTRUCTOR_DATA=str(tmp_path / "empty"), PYTHONPATH=str(REPO), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    if require is not None:
        env[REQUIRE_DATA_VARIABLE] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_data_skips_with_a_reason(tmp_path):
    result = run_probe(tmp_path, require=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "shared data folder not found" in result.stdout
    assert f"set {REQUIRE_DATA_VARIABLE}=1" in result.stdout


def test_missing_data_fails_when_required(tmp_path):
    result = run_probe(tmp_path, require="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "shared data folder not found" in result.stdout and f"{REQUIRE_DATA_VARIABLE} is set" in result.stdout


def test_ci_requires_the_data():
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(line.split("#")[0].split() == [f"{REQUIRE_DATA_VARIABLE}=1", "make", "test-all"] for line in lines)


def make_recipe(target: str) -> list[str]:
    """The command lines of one Makefile target, with the Makefile's own variables expanded by make."""
    done = subprocess.run(
        ["make", "-n", "-C", str(REPO), target, "VENV=.venv-never-built", "STAMP=", "PY=python"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if "pytest" in line]


def test_make_test_leaves_out_only_the_system_tier_and_test_all_runs_everything():
    (test,) = make_recipe("test")
    (test_all,) = make_recipe("test-all")
    assert test.endswith(' -m "not system"') and "-n 2 --dist loadfile" in test
    assert test_all == test.removesuffix(' -m "not system"')  # the same run, every marker
