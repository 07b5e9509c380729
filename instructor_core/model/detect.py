"""Recognising INSTRUCTOR checkpoints that arrive without their hub id.

The hub's ``hkunlp/instructor-*`` repositories describe their modules with plain
sentence-transformers types and a Pooling config without ``include_prompt``, so nothing in the
module files says that the instruction must be left out of pooling. A copy loaded by path (a
``snapshot_download``, the Hugging Face cache, a folder moved to an offline server) is recognised
here from what else it says: its path, its transformer config, its model card. Where nothing says
and the folder has INSTRUCTOR's shape, :func:`warn_if_ambiguous` warns once per folder, naming the
``instructor=`` option.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "INSTRUCTOR_HUB_IDS",
    "AmbiguousInstructorWarning",
    "instructor_evidence",
    "looks_like_instructor",
    "warn_if_ambiguous",
]

INSTRUCTOR_HUB_IDS = ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl")

# hkunlp/instructor-large, the older hku-nlp/ organisation, and the same ids inside a path:
# "models--hkunlp--instructor-large" (the Hugging Face cache), "hkunlp_instructor-large"
# (sentence-transformers < 2.3 cache folders) or ".../hkunlp/instructor-large" (a copy that keeps
# the hub id as its folders).
_ID = r"hku-?nlp(?:/|--|_)instructor-(?:base|large|xl)"
_ID_IN_TEXT = re.compile(rf"(?<![\w-]){_ID}(?![\w-])", re.IGNORECASE)
_ID_PATH_PART = re.compile(rf"^(?:models--)?{_ID}$", re.IGNORECASE)
_CARD_MARKERS = re.compile(rf"(?<![\w-]){_ID}(?![\w-])|\bInstructorEmbedding\b|\bINSTRUCTOR\(", re.IGNORECASE)
_T5_TYPES = ("t5", "mt5", "umt5")
_CARD_CHARS = 20_000

_warned: set[str] = set()
_warned_lock = threading.Lock()


class AmbiguousInstructorWarning(UserWarning):
    """A folder shaped like an INSTRUCTOR checkpoint that says neither that it is one nor that it is not."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_path(root: Path) -> str | None:
    candidates = [root]
    try:
        candidates.append(root.resolve())
    except OSError:
        pass
    for path in candidates:
        parts = path.parts
        # one part ("models--hkunlp--instructor-large") or two ("hkunlp/instructor-large")
        for name in (*parts, *(f"{owner}/{repo}" for owner, repo in zip(parts, parts[1:], strict=False))):
            if _ID_PATH_PART.match(name):
                return f"its path ({name})"
    return None


def _from_config(transformer_path: Path) -> str | None:
    name = _read_json(transformer_path / "config.json").get("_name_or_path")
    if isinstance(name, str) and _ID_IN_TEXT.search(name):
        return f"config.json (_name_or_path {name!r})"
    return None


def _from_card(root: Path) -> str | None:
    card = root / "README.md"
    try:
        with card.open(encoding="utf-8", errors="replace") as fh:
            text = fh.read(_CARD_CHARS)
    except OSError:
        return None
    found = _CARD_MARKERS.search(text)
    return f"README.md (mentions {found.group(0)!r})" if found else None


def looks_like_instructor(transformer_path: Path, dense_layers: int, has_prompts: bool) -> bool:
    """Whether a folder has INSTRUCTOR's shape: a T5 encoder, a Dense layer, no prompts.

    Args:
        transformer_path: The folder with the transformer's ``config.json``.
        dense_layers: How many Dense modules follow the pooling.
        has_prompts: Whether ``config_sentence_transformers.json`` names prompts.
    """
    if dense_layers == 0 or has_prompts:
        return False
    config = _read_json(transformer_path / "config.json")
    return str(config.get("model_type", "")).lower() in _T5_TYPES


def instructor_evidence(
    root: Path,
    transformer_path: Path,
    *,
    hub_id: str | None,
    module_types: Sequence[str],
    shaped_like_instructor: bool,
) -> str | None:
    """Say what marks ``root`` as an INSTRUCTOR checkpoint, or None where nothing does.

    In order: ``InstructorEmbedding`` module types; the hub id it was loaded by; its path (a
    Hugging Face cache folder ``models--hkunlp--instructor-*``); the transformer config's
    ``_name_or_path``; the model card (README.md naming ``hkunlp/instructor-*``,
    ``InstructorEmbedding`` or ``INSTRUCTOR(``), counted only for a folder shaped like one, since a
    card may name INSTRUCTOR as a baseline.

    Args:
        root: The model folder.
        transformer_path: The folder of its Transformer module.
        hub_id: The name the model was loaded by, if any.
        module_types: The ``type`` of each module in ``modules.json``.
        shaped_like_instructor: What :func:`looks_like_instructor` says of the folder.

    Returns:
        A short phrase naming the evidence (for messages), or None.
    """
    if any("InstructorEmbedding" in t for t in module_types):
        return "its modules.json (InstructorEmbedding module types)"
    if hub_id is not None and _ID_IN_TEXT.fullmatch(hub_id.strip("/")):
        return f"the hub id {hub_id!r}"
    evidence = _from_path(root) or _from_config(transformer_path)
    if evidence is None and shaped_like_instructor:
        evidence = _from_card(root)
    return evidence


def warn_if_ambiguous(root: Path) -> None:
    """Warn, once per folder, that ``root`` may be an INSTRUCTOR checkpoint loaded as a plain model."""
    try:
        key = str(root.resolve())
    except OSError:
        key = str(root)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"{root} looks like an INSTRUCTOR checkpoint (a T5 encoder with a Dense layer and no prompts), "
        "but nothing in it says whether it is one, so it loads as a plain sentence-transformers model "
        "whose pooling counts the instruction's tokens. If it is an INSTRUCTOR checkpoint, pass "
        "instructor=True (CLI: --instructor) to leave the instruction out of pooling as INSTRUCTOR "
        "does; pass instructor=False (CLI: --no-instructor) to keep the plain pooling without this warning.",
        AmbiguousInstructorWarning,
        stacklevel=5,  # the caller of InstructorEncoder.from_pretrained
    )
