"""`instructor --help`, `--version`, help on every option, `--quiet` on transformers' bars."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

import instructor_core
from instructor_core.cli import build_parser, main
from tests.cli_walk import missing_help, walk

# ingest, search (and any store command) are checked where the store CLI is built.
STORE_COMMANDS = frozenset({"ingest", "search", "collections"})


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"instructor {instructor_core.__version__}"
    assert out == f"instructor {importlib.metadata.version('instructor')}"


def test_every_option_and_subcommand_has_help():
    assert missing_help(build_parser(), skip=STORE_COMMANDS) == []


def test_walker_sees_the_whole_tree():
    entries = list(walk(build_parser()))
    names = {(e.path, e.name) for e in entries}
    # Nested subcommands, options and positionals are all reached.
    assert {((), "eval"), (("eval",), "sts"), (("eval", "sts"), "--data"), (("embed",), "input")} <= names
    assert (("embed",), "-o/--output") in names
    assert not any(e.name in ("-h/--help",) for e in entries)


def test_walker_reports_what_has_no_help():
    import argparse

    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--documented", help="yes")
    parser.add_argument("--bare")
    subs = parser.add_subparsers()
    sub = subs.add_parser("run")
    sub.add_argument("thing", help="  ")
    assert missing_help(parser) == [
        "instructor --bare",
        "instructor run",
        "instructor run (description)",
        "instructor run thing",
    ]
    assert missing_help(parser, skip=frozenset({"run"})) == ["instructor --bare"]


@pytest.mark.parametrize("command", ["embed", "train", "mine-negatives", "make-rows", "eval"])
def test_subcommand_help_prints(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: instructor {command}")


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_silences_the_loading_weights_bar(tmp_path, tiny_t5_path, quiet, capfd):
    from transformers.utils import logging as hf_logging

    source = tmp_path / "in.txt"
    source.write_text("one text\n", encoding="utf-8")
    out = tmp_path / "v.npy"
    argv = ["embed", str(source), "-o", str(out), "--model", str(tiny_t5_path)]
    assert main(argv + (["--quiet"] if quiet else [])) == 0
    err = capfd.readouterr().err
    assert np.load(out).shape[0] == 1
    if quiet:
        assert err == ""
    else:
        assert "Loading weights" in err and "wrote 1 x" in err
    assert hf_logging.is_progress_bar_enabled()  # --quiet does not leak into the rest of the process


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    """Issue 20: the CLI maps only expected failures (InstructorError and the file system's refusals)
    to one line; a ValueError planted inside a command, as a bug would raise it, propagates."""
    from instructor_core.cli import main
    from instructor_core.cli.commands import embed

    def planted(path, field):
        raise ValueError("a bug: an unexpected value deep inside")

    monkeypatch.setattr(embed, "read_texts", planted)
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="a bug"):
        main(["embed", str(source), "-o", str(tmp_path / "v.npy"), "--model", "m"])
    # the same command's expected failures stay one line, exit 2
    assert main(["embed", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "v.npy"), "--model", "m"]) == 2


def test_an_unknown_option_of_a_subcommand_prints_that_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "a query", "--collection", "c", "--colection", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("usage: instructor search")
        and "instructor search: error: unrecognized arguments: --colection" in err
    )
    assert "did you mean --collection?" in err
