"""Servers the tests start on loopback: a free port, and a real ``chroma run`` (the chromadb wheel's
own server) that is up before it is handed out and stopped after. One copy, used by the Chroma, CLI,
store and Ray tests (the ``chroma_server`` fixture in conftest, ``chroma_server_process`` directly)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chroma_client(port: int):  # noqa: ANN201 (a chromadb client)
    import chromadb
    from chromadb.config import Settings

    return chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False))


@contextlib.contextmanager
def chroma_server_process(folder: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """A ``chroma run`` on a free loopback port with its data and log in ``folder``, up (heartbeat
    answered, within 120 s) before it is yielded; stopped (and continued first, if a test stopped it)
    after."""
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        pytest.skip(f"chroma CLI not found at {exe}")
    port = free_port()
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                chroma_client(port).heartbeat()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"chroma server did not come up: {(folder / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
