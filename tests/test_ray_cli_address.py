"""``--engine ray --ray-address`` pointed where no cluster listens: one line and exit 2 in a bounded time, not
Ray's "Failed to connect to GCS" warnings for minutes (no cluster needed: that is the point)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.ray_cluster import free_port

pytest.importorskip("ray")


def test_a_ray_address_with_no_cluster_is_one_line_within_30_s(tiny_bert_path, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "one passage"}) + "\n", encoding="utf-8")
    port = free_port()  # nothing listens there
    command = [sys.executable, "-m", "instructor_core.cli", "ingest", str(corpus), "--engine", "ray",
               "--ray-address", f"127.0.0.1:{port}", "--store", f"chroma:{tmp_path / 'store'}",
               "--collection", "docs", "--model", str(tiny_bert_path)]  # fmt: skip
    env = {"PYTHONPATH": f"{REPO}:{REPO / 'integrations'}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert time.monotonic() - started < 30, done.stderr[-2000:]
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"instructor ingest: error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there (Connection "
        "refused); start one with `ray start --head` or pass its head's address"
    ]
