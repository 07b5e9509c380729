"""Write the tiny ``chroma:DIR`` and ``qdrant:DIR`` (Qdrant Edge) stores of ``stores.tar.gz`` with the code
of commit 8c20ca7 (before issue 20 split storage from encoding), so a test can check that the new
code still reads collections written by the old one. Kept for the record; run it only with that
commit's code: ``python tests/data/legacy_stores/make_legacy_stores.py``.

The encoder is a deterministic stand-in (8 dimensions, vectors from a hash of the text), so no
model is needed to write or read them: ``tests/test_legacy_stores.py`` searches by vector.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from instructor_core.instructions import Instructions

HERE = Path(__file__).parent
DIMENSION = 8
MODEL = "legacy-model"
FINGERPRINT = "sha256:legacy0000000000"
DOCS = [{"id": f"doc-{i}", "text": f"legacy document number {i}", "metadata": {"n": i}} for i in range(6)]


def vector(text: str) -> np.ndarray:
    """A unit vector from the text's hash: the same text, the same vector, in any process."""
    raw = np.frombuffer(hashlib.sha256(text.encode("utf-8")).digest()[: DIMENSION * 4], dtype=np.uint32)
    v = raw.astype(np.float64) / 2**32 - 0.5
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEncoder:
    dimension = DIMENSION
    max_length = 16
    fingerprint = FINGERPRINT
    spec = None

    def __init__(self) -> None:
        self.instructions = Instructions("Represent the legacy query: ", "Represent the legacy document: ")

    def encode_documents(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        return np.stack([vector(t) for t in texts])

    def encode_queries(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        return np.stack([vector(t) for t in texts])


def main() -> None:
    from instructor_core.ingest.stores import open_store

    for scheme in ("chroma", "qdrant"):
        folder = HERE / scheme
        shutil.rmtree(folder, ignore_errors=True)
        store = open_store(f"{scheme}:{folder}")
        try:
            store.ingest("legacy", DOCS, FakeEncoder(), model=MODEL, show_progress=False)
        finally:
            store.close()
        (folder / ".instructor.lock").unlink(missing_ok=True)
    # one archive: Qdrant Edge preallocates 32 MB files (sparse on disk, not in a checkout), and a
    # test must open a copy anyway (opening writes a lock file and the WAL)
    subprocess.run(["tar", "--sparse", "-czf", "stores.tar.gz", "chroma", "qdrant"], cwd=HERE, check=True)
    for scheme in ("chroma", "qdrant"):
        shutil.rmtree(HERE / scheme)


if __name__ == "__main__":
    main()
