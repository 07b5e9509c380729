"""``instructor serve --engine ray`` on the two-node loopback cluster of tests/ray_cluster.py.

The CLI runs as a process of its own against the cluster (1 CPU per node, 1 CPU per replica: one
replica on each node), with Serve's default proxy location, a proxy on each node with a replica, both
bound at the one loopback port (Serve sets SO_REUSEPORT: the kernel deals new connections between
them, as a load balancer over the nodes would). The replicas answer the in-process encoder's vectors
for both slots; each response names the replica and node that answered it, and each replica's own
``/metrics`` says how many inputs it embedded. SIGTERM to the CLI takes the application down.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.ray_cluster import HEAD_IP, WORKER_IP, cluster_env, cluster_turn, end_process, free_port, two_node_cluster

ray = pytest.importorskip("ray")
pytest.importorskip("ray.serve", reason="needs ray[serve] (the serve-ray extra)")

from instructor_core import Instructions, InstructorEncoder, LoadOptions  # noqa: E402
from instructor_serve.ray_serve import NODE_HEADER, REPLICA_HEADER  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.system, pytest.mark.server]

QUERY = "Represent the scientific claim for retrieving supporting abstracts: "
DOCUMENT = "Represent the scientific abstract for retrieval: "
MAX_LENGTH = 128
TEXTS = [
    f"{subject} {verb} {thing} in {place}."
    for subject, verb, thing, place in zip(
        ["Vitamin D", "Aspirin", "Sleep loss", "Exercise", "Smoking", "Caffeine", "Obesity", "Statins"] * 3,
        ["lowers", "raises", "does not change", "predicts"] * 6,
        ["fracture risk", "blood pressure", "insulin resistance", "tumour growth", "memory", "mortality"] * 4,
        ["older adults", "mice", "children", "a cohort of 2,000 nurses", "cell lines", "twins", "smokers", "athletes"]
        * 3,
        strict=True,
    )
]
#: How long the deployment may take to come up (two replicas importing torch on loaded cores).
DEPLOY_S = 240


def _post(port: int, path: str, body: dict) -> tuple[dict | list, dict[str, str]]:
    """One request on a fresh connection (so the kernel deals each to either proxy)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}


def _get(port: int, path: str) -> tuple[str, dict[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.read().decode(), {k.lower(): v for k, v in response.headers.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm_path):
    """The CLI's deployment (2 replicas) on the cluster: (port, the CLI process, its log)."""
    logs = tmp_path_factory.mktemp("serve_ray")
    with cluster_turn(), two_node_cluster(logs) as address:
        port = free_port()
        command = [
            sys.executable, "-m", "instructor_core.cli", "serve", "--model", str(minilm_path),
            "--max-length", str(MAX_LENGTH), "--query-instruction", QUERY, "--document-instruction", DOCUMENT,
            "--engine", "ray", "--ray-address", address, "--replicas", "2", "--replica-cpus", "1",
            "--port", str(port), "--drain-seconds", "10",
        ]  # fmt: skip
        log_path = logs / "cli.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                command, env=cluster_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            deadline = time.monotonic() + DEPLOY_S
            while "Ctrl-C stops" not in log_path.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the deployment did not come up:\n{log_path.read_text()[-4000:]}")
                time.sleep(1)
            _wait_for_proxies(2, deadline)
            yield port, proc, log_path
        finally:
            end_process(proc, timeout=60)


def _wait_for_proxies(count: int, deadline: float) -> None:
    """Until Serve's proxies on ``count`` nodes are healthy (the worker node's starts with its replica)."""
    from ray import serve

    while True:
        proxies = serve.status().proxies
        if sum(str(status).endswith("HEALTHY") for status in proxies.values()) >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"Serve's proxies did not come up on {count} nodes: {proxies}")
        time.sleep(1)


def _embedded_per_replica(port: int, replicas: set[str], tries: int = 80) -> dict[str, float]:
    """Each replica's ``instructor_inputs_embedded_total``, from its own ``/metrics`` (asked until every
    replica has answered once)."""
    seen: dict[str, float] = {}
    for _ in range(tries):
        text, headers = _get(port, "/metrics")
        match = re.search(r"^instructor_inputs_embedded_total ([0-9.e+]+)$", text, re.MULTILINE)
        assert match, text
        seen[headers[REPLICA_HEADER]] = float(match.group(1))
        if set(seen) >= replicas:
            return seen
    pytest.fail(f"/metrics answered by {sorted(seen)} only, of {sorted(replicas)}")


def test_two_replicas_on_two_nodes_answer_the_in_process_vectors_and_share_the_requests(served, minilm_path):
    port, _, _ = served
    encoder = InstructorEncoder.from_pretrained(
        minilm_path, Instructions(QUERY, DOCUMENT), options=LoadOptions(max_length=MAX_LENGTH, device="cpu")
    )
    expected = {"query": encoder.encode_queries(TEXTS), "document": encoder.encode_documents(TEXTS)}
    assert np.abs(expected["query"] - expected["document"]).max() > 1e-2  # the two slots differ

    # 48 requests of 3 inputs, 8 at a time: OpenAI queries and documents, and TEI /embed (documents)
    jobs = []
    for i in range(48):
        start = (i * 3) % len(TEXTS)
        kind = ("query", "document", "tei")[i % 3]
        jobs.append((kind, list(range(start, start + 3))))

    def send(job):
        kind, rows = job
        texts = [TEXTS[r] for r in rows]
        if kind == "tei":
            body, headers = _post(port, "/embed", {"inputs": texts})
            return "document", rows, np.asarray(body, dtype=np.float32), headers
        body, headers = _post(port, "/v1/embeddings", {"input": texts, "model": "m", "input_type": kind})
        return kind, rows, np.asarray([d["embedding"] for d in body["data"]], dtype=np.float32), headers

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, jobs))

    worst = max(float(np.abs(got - expected[side][rows]).max()) for side, rows, got, _ in answers)
    print(f"largest |server - in-process| over {len(jobs)} requests: {worst:.2e}")
    assert worst <= 1e-6, worst
    by_replica: dict[str, int] = {}
    nodes: dict[str, str] = {}
    for *_, headers in answers:
        replica = headers[REPLICA_HEADER]
        by_replica[replica] = by_replica.get(replica, 0) + 1
        nodes[replica] = headers[NODE_HEADER]
    print(f"requests per replica: {by_replica}; nodes: {nodes}")
    assert len(by_replica) == 2 and min(by_replica.values()) > 0, by_replica
    assert sorted(nodes.values()) == [HEAD_IP, WORKER_IP]  # one replica on each node

    embedded = _embedded_per_replica(port, set(by_replica))
    print(f"inputs embedded per replica (/metrics): {embedded}")
    assert min(embedded.values()) > 0
    assert sum(embedded.values()) == 3 * len(jobs)
    for replica, requests in by_replica.items():
        assert embedded[replica] == 3 * requests  # what each replica's own metrics say it embedded


def test_info_and_errors_come_from_the_same_app(served):
    port, _, _ = served
    text, _ = _get(port, "/info")
    info = json.loads(text)
    assert info["instructions"] == {"query": QUERY, "document": DOCUMENT}
    assert info["max_input_length"] == MAX_LENGTH
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(port, "/v1/embeddings", {"input": ["fine", ""], "model": "m"})
    assert err.value.code == 422
    assert json.loads(err.value.read())["error"]["param"] == "input[1]"


def test_sigterm_takes_the_application_down(served):
    port, proc, log_path = served
    end_process(proc, timeout=90)
    assert proc.returncode == 0, log_path.read_text()[-4000:]
    assert "stopping: the replicas finish the requests they hold" in log_path.read_text()
    deadline = time.monotonic() + 30  # serve.shutdown() ended the proxies: nothing listens on the port
    while True:
        try:
            _get(port, "/health")
        except urllib.error.HTTPError:  # a proxy still answering (404: no application)
            pass
        except urllib.error.URLError:
            break
        assert time.monotonic() < deadline, "a Serve proxy still listens after the CLI stopped"
        time.sleep(1)
