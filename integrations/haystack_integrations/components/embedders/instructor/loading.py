"""One loaded model per process for every Instructor embedder that names the same model and options.

A Haystack pipeline usually holds a text embedder (queries) and a document embedder (documents) of
the same model, and a pipeline loaded from YAML rebuilds both from their settings: they find the
same :class:`~instructor_core.InstructorEncoder` here instead of reading the weights twice. The key
is the model (as given), the :class:`~instructor_core.LoadOptions` and a digest of the token (never
the token itself); :func:`clear_encoder_cache` forgets them all.

A gated model's token (Haystack's ``Secret``) is handed to ``huggingface_hub.snapshot_download``,
which fetches (or finds in the cache) the snapshot; the encoder then loads that folder, so the token
never reaches the core's options, messages or a collection's records.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from instructor_core import InstructorEncoder, LoadOptions, ModelFolderError

__all__ = ["clear_encoder_cache", "shared_encoder"]

_cache: dict[tuple[str, LoadOptions, str | None], InstructorEncoder] = {}
_loading: dict[tuple[str, LoadOptions, str | None], threading.Lock] = {}
_lock = threading.Lock()


def shared_encoder(model: str, options: LoadOptions, token: str | None = None) -> InstructorEncoder:
    """The encoder for ``(model, options, token)``, loaded once per process.

    Two callers asking for the same key at the same time load it once: the second waits for the first.

    Args:
        model: A hub id or a local folder.
        options: How to load it.
        token: A Hugging Face token for a gated or private hub model; None: huggingface_hub's own
            (``HF_TOKEN``, ``huggingface-cli login``).

    Raises:
        ModelFolderError: The model is neither a folder nor a hub id that can be fetched.
        LoadOptionsError: An option it cannot take.
    """
    digest = None if not token else hashlib.sha256(token.encode("utf-8")).hexdigest()
    key = (model, options, digest)
    with _lock:
        if key in _cache:
            return _cache[key]
        gate = _loading.setdefault(key, threading.Lock())
    with gate:
        with _lock:
            if key in _cache:
                return _cache[key]
        try:
            source = model if not token else _fetch(model, options, token)
            encoder = InstructorEncoder.from_pretrained(source, options=options)
            with _lock:
                _cache[key] = encoder  # before the gate goes, so no later caller loads it again
        finally:
            with _lock:
                _loading.pop(key, None)
        return encoder


def clear_encoder_cache() -> None:
    """Forget every shared encoder (frees their memory once no embedder holds them)."""
    with _lock:
        _cache.clear()


def _fetch(model: str, options: LoadOptions, token: str) -> str:
    """A local folder for ``model``: the folder itself, a legacy ``cache_dir/owner_name`` folder (as the
    core reads it), or the hub snapshot fetched with ``token``."""
    path = Path(model).expanduser()
    if path.is_dir():
        return model
    if options.cache_dir is not None and options.revision is None:
        legacy = Path(options.cache_dir).expanduser() / model.replace("/", "_")
        if (legacy / "modules.json").is_file() or (legacy / "config.json").is_file():
            return model  # the core reads it as it is
    if model.count("/") != 1 or model.startswith((".", "/", "~")):
        raise ModelFolderError(f"{model!r} is not a local folder, and not a hub id of the form 'owner/name'")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(model, revision=options.revision, cache_dir=options.cache_dir, token=token)
    except Exception as exc:  # the hub client raises many types; the message never shows the token
        raise ModelFolderError(
            f"could not fetch {model!r} from the Hugging Face hub with the token given "
            f"({type(exc).__name__}); check the token's access to it, the network and HF_HUB_OFFLINE"
        ) from exc
    return os.fspath(folder)
