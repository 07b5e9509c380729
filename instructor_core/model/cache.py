"""Where this package caches what it derives from a model (ONNX exports, fingerprints), and the one
file hasher both use. Its own module, so the backends and the fingerprint import it, not each other."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["default_cache_dir", "hash_file"]


def default_cache_dir() -> Path:
    """``$INSTRUCTOR_CACHE``, else ``$XDG_CACHE_HOME/instructor``, else ``~/.cache/instructor``."""
    explicit = os.environ.get("INSTRUCTOR_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "instructor"


def hash_file(path: Path) -> str:
    """SHA-256 hex of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
