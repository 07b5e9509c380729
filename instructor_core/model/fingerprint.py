"""A model's fingerprint: a hash of what decides its vectors, so a store can tell two models apart.

A model identified by its path string alone can change under that path (weights replaced in
place) and a store would go on mixing its vectors with the old ones. :func:`model_fingerprint`
hashes the content of the files that decide the vectors, wherever the folder lies:

- weights: ``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth`` (the transformer's and the Dense
  layers', at any depth of the folder);
- configuration: every ``*.json`` file (``config.json``, ``modules.json``,
  ``sentence_bert_config.json``, ``1_Pooling/config.json``, ``2_Dense/config.json``, the
  tokenizer's JSON files) except ``config_sentence_transformers.json``, which holds the default
  instructions (a store records those itself) and version stamps, and ``data_config.json`` (a
  description of the training data);
- the tokenizer's other files: ``*.model`` (SentencePiece), ``vocab.txt``, ``merges.txt``.

Hidden files and folders (``.git``, ``.cache``), model cards and other files do not count. The
fingerprint is ``"sha256:"`` and 24 hex digits of SHA-256 over the sorted relative paths and the
files' own SHA-256s: a copy of the folder elsewhere has the same fingerprint.

Hashing a large model's weights takes seconds, so each file's digest is cached in
``<cache dir>/fingerprints.json`` (the ONNX export cache's folder), keyed by its resolved path,
size, mtime, ctime and inode; any write to the file or replacement changes one of them. The cache
is written atomically; a corrupt or unreadable one is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from instructor_core.errors import InputError
from instructor_core.model.cache import default_cache_dir, hash_file

__all__ = ["FINGERPRINT_PREFIX", "fingerprint_files", "loaded_fingerprint", "model_fingerprint"]

FINGERPRINT_PREFIX = "sha256:"
_LENGTH = 24
_CACHE_NAME = "fingerprints.json"
_CACHE_VERSION = 1
_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth"})
_TOKENIZER_NAMES = frozenset({"vocab.txt", "merges.txt"})
_EXCLUDED_NAMES = frozenset({"config_sentence_transformers.json", "data_config.json"})


def _counts(rel: Path) -> bool:
    if any(part.startswith(".") for part in rel.parts):
        return False
    name = rel.name
    if name in _EXCLUDED_NAMES:
        return False
    suffix = rel.suffix.lower()
    return suffix in _WEIGHT_SUFFIXES or suffix in (".json", ".model") or name in _TOKENIZER_NAMES


def fingerprint_files(folder: str | os.PathLike[str]) -> list[str]:
    """The files (relative paths, "/" separators, sorted) that :func:`model_fingerprint` hashes."""
    root = Path(folder)
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and _counts(p.relative_to(root))
    )


def _hash_file(path: Path) -> str:
    """SHA-256 hex of a file's content (tests count the calls)."""
    return hash_file(path)


def _cache_path(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir) / _CACHE_NAME
    return default_cache_dir() / _CACHE_NAME


def _load_cache(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing, unreadable or corrupt: start over (it is only a cache)
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return {k: v for k, v in data["files"].items() if isinstance(v, dict)}


def _save_cache(path: Path, files: dict[str, dict]) -> None:
    """Write the cache atomically (a temporary file renamed over it); entries of vanished files go."""
    kept = {k: v for k, v in files.items() if os.path.exists(k)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": _CACHE_VERSION, "files": kept}, handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only cache folder costs a re-hash next time, nothing else


def _stamp(stat: os.stat_result) -> dict[str, int]:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "ino": stat.st_ino}


def model_fingerprint(folder: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The fingerprint of the model in ``folder``: ``"sha256:"`` and 24 hex digits.

    Args:
        folder: A model folder (sentence-transformers or plain Hugging Face layout).
        cache_dir: Where ``fingerprints.json`` lives; None uses ``$INSTRUCTOR_CACHE`` or
            ``~/.cache/instructor`` (see :func:`instructor_core.model.cache.default_cache_dir`).

    Raises:
        FileNotFoundError: If ``folder`` is not a folder.
        ValueError: If it holds no weight file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a model folder")
    names = fingerprint_files(root)
    if not any(Path(n).suffix.lower() in _WEIGHT_SUFFIXES for n in names):
        raise InputError(f"{root} holds no weight file (*.safetensors, *.bin, *.pt, *.pth) to fingerprint")
    cache_file = _cache_path(cache_dir)
    cache = _load_cache(cache_file)
    changed = False
    overall = hashlib.sha256(b"instructor-model-fingerprint/1\n")
    for name in names:
        real = (root / name).resolve()  # a Hugging Face cache snapshot links to its blobs
        stamp = _stamp(real.stat())
        entry = cache.get(str(real))
        if entry is not None and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
            digest = entry["sha256"]
        else:
            digest = _hash_file(real)
            cache[str(real)] = {**stamp, "sha256": digest}
            changed = True
        overall.update(f"{name}\0{digest}\n".encode())
    if changed:
        _save_cache(cache_file, cache)
    return FINGERPRINT_PREFIX + overall.hexdigest()[:_LENGTH]


def loaded_fingerprint(folder_fingerprint: str, *, include_prompt: bool) -> str:
    """The fingerprint of a model as loaded: its folder's fingerprint and how it pools.

    The same folder read as an INSTRUCTOR checkpoint (instruction tokens left out of pooling) and as
    a plain one gives other vectors, so the two loads get different fingerprints.
    """
    digest = hashlib.sha256(f"{folder_fingerprint};include_prompt={include_prompt}".encode())
    return FINGERPRINT_PREFIX + digest.hexdigest()[:_LENGTH]
