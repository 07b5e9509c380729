"""Output files and streams the CLI writes to: a full disk, a file size limit, a closed pipe, and the
mode of a file written over. Each run is a real ``instructor`` process with real file descriptors
(``/dev/full``, ``RLIMIT_FSIZE``, a pipe closed by ``head``)."""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_helpers import cli_env, error_lines, ingest_argv, write_corpus

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")

CLI = [sys.executable, "-m", "instructor_core.cli"]


def _texts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"text number {i} about a topic\n" for i in range(n)), encoding="utf-8")
    return path


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], env=cli_env(), capture_output=True, text=True, timeout=300, **kwargs)


def _embed(texts: Path, out: Path, model: Path, before: Callable[[], object]) -> subprocess.CompletedProcess:
    """``instructor embed TEXTS -o OUT`` in a child that runs ``before`` first (a limit, a umask)."""
    argv = [*CLI, "embed", str(texts), "-o", str(out), "--model", str(model), "--quiet"]
    return subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=300, preexec_fn=before)


def _one_line(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_embed_npy_under_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path, tiny_t5_path):
    """``embed -o x.npy`` past the file size limit (numpy's short write: ``OSError: N requested and M
    written``, no errno) is one line; neither x.npy nor a temporary file is left."""
    texts = _texts(tmp_path, 400)
    out = tmp_path / "out" / "x.npy"
    out.parent.mkdir()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = _embed(texts, out, tiny_t5_path, limit)
    _one_line(done, "instructor embed: error:", str(out), "nothing was written")
    assert list(out.parent.iterdir()) == []


def _into_dev_full(argv: list[str]) -> subprocess.CompletedProcess:
    """The CLI with its stdout on ``/dev/full``: every write fails with ENOSPC."""
    with open("/dev/full", "w") as full:
        return subprocess.run([*CLI, *argv], env=cli_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)


def test_embed_to_a_full_disk_is_one_line(tmp_path, tiny_t5_path):
    """``embed -o - > /dev/full``."""
    done = _into_dev_full(["embed", str(_texts(tmp_path, 20)), "-o", "-", "--model", str(tiny_t5_path), "--quiet"])
    _one_line(done, "instructor embed: error:", "stdout", "No space left on device")


def test_search_to_a_full_disk_is_one_line(tmp_path, tiny_t5_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 6)
    store = f"qdrant:{tmp_path / 'db'}"
    assert _run(ingest_argv(corpus, store, tiny_t5_path)).returncode == 0
    argv = ["search", "a topic", "--store", store, "--collection", "notes", "--model", str(tiny_t5_path)]
    done = _into_dev_full(argv)
    _one_line(done, "instructor search: error:", "stdout", "No space left on device")


def test_embed_into_a_pipe_closed_early_exits_quietly(tmp_path, tiny_t5_path):
    """``embed big.txt -o - | head -c 100``: no traceback, no error line; the exit status is a closed
    pipe's (141, 128 + SIGPIPE), as ``cat`` gives."""
    texts = _texts(tmp_path, 3000)
    read, write = os.pipe()
    proc = subprocess.Popen(
        [*CLI, "embed", str(texts), "-o", "-", "--model", str(tiny_t5_path), "--quiet"],
        env=cli_env(),
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        assert len(reader.read(100)) == 100
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 141, stderr[-2000:]
    assert stderr.strip() == "", stderr[-2000:]


@pytest.mark.parametrize("suffix", [".jsonl", ".npy"])
def test_output_written_over_keeps_its_mode_and_a_new_one_takes_the_umask(tmp_path, tiny_t5_path, suffix):
    texts = _texts(tmp_path, 3)
    kept = tmp_path / f"perm{suffix}"
    kept.write_text("old")
    kept.chmod(0o644)
    fresh = tmp_path / f"new{suffix}"
    for out in (kept, fresh):
        done = _embed(texts, out, tiny_t5_path, lambda: os.umask(0o027))
        assert done.returncode == 0, done.stderr[-2000:]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 under umask 027
