"""instructor_core.locking: one writer per embedded store folder, across real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from instructor_core import locking
from instructor_core.errors import InstructorError
from instructor_core.locking import LOCK_FILE, StoreLockedError, store_lock

REPO = Path(__file__).resolve().parent.parent

# Takes the lock, says so, then holds it until a line arrives on stdin (or forever, until killed).
# instructor_core's __init__ (torch, transformers) is bypassed: the holder starts in a blink.
_HOLDER = """
import sys, types
package = types.ModuleType("instructor_core")
package.__path__ = [sys.argv[2]]
sys.modules["instructor_core"] = package
from instructor_core.locking import store_lock
with store_lock(sys.argv[1], timeout=0, what="test store"):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a real second process holding the lock on tmp_path/store; yields the Popen."""
    folder = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder), str(REPO / "instructor_core")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_second_holder_fails_after_its_timeout_naming_the_pid(tmp_path, holder):
    folder = tmp_path / "store"
    with pytest.raises(StoreLockedError) as info:
        with store_lock(folder, timeout=0.3, what="Chroma store"):
            pytest.fail("the lock was granted while another process held it")
    message = str(info.value)
    assert f"process {holder.pid}" in message and str(folder) in message
    assert message.startswith("Chroma store ") and "\n" not in message
    assert info.value.holder_pid == holder.pid
    assert isinstance(info.value, InstructorError)  # the CLI maps it to one line and exit 2


def test_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path, holder, monkeypatch):
    folder = tmp_path / "store"
    acquired = threading.Event()
    errors: list[BaseException] = []

    def wait_for_lock() -> None:
        try:
            with store_lock(folder, timeout=120):
                acquired.set()
                holder_file = json.loads((folder / LOCK_FILE).read_text())
                assert holder_file["pid"] == os.getpid()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    polled = threading.Event()
    real_sleep = locking._sleep

    def sleep(seconds: float) -> None:  # called only after a try found the lock held
        polled.set()
        real_sleep(seconds)

    monkeypatch.setattr(locking, "_sleep", sleep)
    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    assert polled.wait(timeout=60), "the waiter never found the lock held"
    assert not acquired.is_set()  # it waits: the other process still holds the lock
    holder.stdin.write("release\n")
    holder.stdin.flush()
    waiter.join(timeout=120)
    assert not errors and acquired.is_set()
    assert holder.stdout.readline().strip() == "released"


def test_lock_of_a_killed_process_does_not_block(tmp_path, holder):
    folder = tmp_path / "store"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    stale = json.loads((folder / LOCK_FILE).read_text())
    assert stale["pid"] == holder.pid  # the file (and its pid) is left behind by kill -9 ...
    with store_lock(folder, timeout=0):  # ... but the flock died with the process
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_lock_is_exclusive_within_one_process_too_and_released_on_exit(tmp_path):
    folder = tmp_path / "store"
    with store_lock(folder, timeout=0):
        with pytest.raises(StoreLockedError, match=f"process {os.getpid()}"):
            with store_lock(folder, timeout=0):
                pass
    with store_lock(folder, timeout=0):  # released after the block, also after an error inside it
        pass
    with pytest.raises(KeyError):
        with store_lock(folder, timeout=0):
            raise KeyError("boom")
    with store_lock(folder, timeout=0):
        pass
    with pytest.raises(ValueError, match="timeout"):
        with store_lock(folder, timeout=-1):
            pass


def test_a_released_lock_file_names_no_holder(tmp_path):
    """After a clean release the file is empty: a later reader finds no stale pid to blame."""
    folder = tmp_path / "store"
    with store_lock(folder, timeout=0):
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert (folder / LOCK_FILE).read_text() == ""
