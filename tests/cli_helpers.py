"""What the CLI tests share: the instructions they ingest with, a CLI subprocess's environment, the
CLI's own error lines, a small corpus and the ``ingest`` argv. Imported by the test modules (never a
test module imported by another)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.tiny_models import corpus_lines

REPO = Path(__file__).resolve().parent.parent
Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "integrations"), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def error_lines(stderr: str) -> list[str]:
    """The CLI's own lines on stderr (transformers' "Loading weights" bar left out)."""
    return [line for line in stderr.splitlines() if line.startswith("instructor ")]


def write_corpus(path: Path, n: int, *, start: int = 0) -> Path:
    rows = [{"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"}
            for i, t in enumerate(corpus_lines(n), start=start)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest_argv(corpus: Path, store: str, model: Path | str, *extra: str) -> list[str]:
    return ["ingest", str(corpus), "--store", store, "--collection", "notes", "--model", str(model),
            "--document-instruction", D, "--query-instruction", Q, "--quiet", *extra]  # fmt: skip
