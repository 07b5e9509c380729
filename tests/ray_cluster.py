"""The two-node Ray cluster on loopback that the Ray tests start (test_ray.py and the modules that share
its fixture, test_serve_ray.py), and the lock by which they take turns.

The cluster is two ``ray start --block`` processes (a head and a second node) started and ended by pid
(never ``ray stop``, which would end every Ray process on the machine). Node addresses are 127.0.0.2 and
127.0.0.3: Ray turns 127.0.0.1 into the machine's outward address, any other loopback address it keeps.
Ray reads its auth settings when it is imported: the cluster's token is set here, before that.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.conftest import REPO

os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
#: Held while a test module's cluster is up: every cluster binds 127.0.0.2/127.0.0.3, so the modules that
#: start one (test_ray, test_ray_shapes, test_ray_resume, test_serve_ray) take turns, whichever pytest-xdist
#: worker runs them.
CLUSTER_LOCK = Path(tempfile.gettempdir()) / "instructor-ray-tests.lock"
#: The longest a module waits for another's cluster to end (the longest module takes about 15 minutes).
CLUSTER_WAIT_S = 45 * 60
#: The ``ray start --block`` processes of the cluster up now, by name ("head", "worker"): a test that kills
#: a node kills its process group (its own session, started here).
STARTED: dict[str, subprocess.Popen] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def end_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """End a process this suite started in a session of its own (``ray start --block``, a server) by its
    pid: SIGTERM, then SIGKILL to its session after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session, started by this suite
            proc.wait()


@contextlib.contextmanager
def cluster_turn() -> Iterator[None]:
    """This module's turn to run a cluster on the loopback addresses (an exclusive ``flock``, waited
    for at most :data:`CLUSTER_WAIT_S`)."""
    import fcntl

    with CLUSTER_LOCK.open("a") as handle:
        deadline = time.monotonic() + CLUSTER_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another test's Ray cluster held {CLUSTER_LOCK} for {CLUSTER_WAIT_S} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cluster_env(pythonpath: Sequence[str] = ()) -> dict[str, str]:
    """The environment of the cluster's nodes, and of a CLI run against it: this checkout first on the
    path, the cluster's token, no usage stats, offline."""
    paths = [str(REPO), str(REPO / "integrations"), *pythonpath, os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


@contextlib.contextmanager
def two_node_cluster(logs: Path, *, pythonpath: Sequence[str] = (), num_cpus: int = 1) -> Iterator[str]:
    """A head node and a second node (``num_cpus`` each), and this process connected as the driver;
    yields the head's address. Hold :func:`cluster_turn` around it."""
    import ray

    exe = Path(sys.executable).parent / "ray"
    port = free_port()
    env = cluster_env(pythonpath)
    common = ["--num-cpus", str(num_cpus), "--object-store-memory", str(200 * 1024**2), "--disable-usage-stats",
              "--block"]  # fmt: skip
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> None:
        log = (logs / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                [str(exe), "start", *args, *common],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        STARTED[name] = procs[-1]

    try:
        start("head", ["--head", "--port", str(port), "--node-ip-address", HEAD_IP, "--include-dashboard=false"])
        address = f"{HEAD_IP}:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                ray.init(address=address, _node_ip_address=HEAD_IP, log_to_driver=False)
                break
            except (ConnectionError, RuntimeError):
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ray head did not come up: {(logs / 'head.log').read_text()}") from None
                time.sleep(1)
        start("worker", ["--address", address, "--node-ip-address", WORKER_IP])
        while sum(n["Alive"] for n in ray.nodes()) < 2:
            if procs[1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"second ray node did not join: {(logs / 'worker.log').read_text()}")
            time.sleep(1)
        yield address
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            end_process(proc)
        STARTED.clear()
        # `ray start --head` left the address of this cluster for later `ray.init()` calls: take it back
        pointer = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if pointer.is_file() and pointer.read_text().strip() == f"{HEAD_IP}:{port}":
            pointer.unlink()


#: The engine settings the cluster tests share: one actor per node (1 torch thread each, half a node's
#: CPU); reads, checks and writes take a quarter.
EMBED = {"concurrency": 2, "num_cpus": 0.5, "batch_size": 64, "task_num_cpus": 0.25}
READ = {"num_cpus": 0.25}


def write_shards(folder: Path, rows: list[dict], n_shards: int) -> list[Path]:
    """``rows`` dealt round-robin into ``shard0.jsonl`` ... ``shard{n-1}.jsonl``."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"shard{k}.jsonl" for k in range(n_shards)]
    for k, path in enumerate(paths):
        with path.open("w", encoding="utf-8") as handle:
            for row in rows[k::n_shards]:
                handle.write(json.dumps(row) + "\n")
    return paths


def shared_cluster(tmp_path_factory) -> Iterator[str]:
    """The two-node cluster the Ray tests share, this process its driver, with the test store's
    dist-info (tests/plugin_store.py) on every node's path; waits its turn (one cluster per machine)."""
    import ray

    from tests.plugin_store import registered

    with cluster_turn():
        logs = tmp_path_factory.mktemp("ray_logs")
        plugin = registered(tmp_path_factory.mktemp("plugin"))
        with two_node_cluster(logs, pythonpath=[str(plugin)]) as address:
            os.environ["INSTRUCTOR_TEST_PLUGIN"] = str(plugin)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            yield address
