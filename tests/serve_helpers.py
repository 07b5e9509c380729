"""Starting a real ``instructor serve`` process on a free loopback port, for the server's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent


def spawn(
    model: Path | str, *flags: str, port: int | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """``instructor serve --model MODEL FLAGS`` on a free port; returns at once (the model loads)."""
    port = port or free_port()
    command = [sys.executable, "-m", "instructor_core.cli", "serve", "--model", str(model), "--port", str(port),
               "--device", "cpu", "--log-level", "warning", *flags]  # fmt: skip
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        command, env=full_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, url: str, bound_s: float = 180) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"instructor serve exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"instructor serve at {url} was not ready within {bound_s} s")


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@contextlib.contextmanager
def running(model: Path | str, *flags: str, env: dict | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, url = spawn(model, *flags, env=env)
    try:
        wait_ready(proc, url)
        yield proc, url
    finally:
        stop(proc)


def metric(url: str, name: str, headers: dict | None = None, labels: Sequence[str] = ()) -> float:
    """The value of one sample of ``/metrics`` (summed over the lines whose labels hold every ``labels``)."""
    text = httpx.get(f"{url}/metrics", headers=headers or {}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total
