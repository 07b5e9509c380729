"""The text a Document embeds (its meta fields and content), checked for the whole batch first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from haystack import Document

from instructor_core.errors import InputError, InputTypeError

__all__ = ["check_documents", "check_meta_fields", "document_texts", "meta_instructions"]


def _which(index: int, document: Document) -> str:
    return f"documents[{index}] (id {document.id!r:.80})"


def check_documents(documents: object, where: str) -> list[Document]:
    """``documents`` as a list of Documents, or an error naming the first item that is not one."""
    if isinstance(documents, (str, bytes, Document)) or not isinstance(documents, Sequence):
        raise InputTypeError(
            f"{where}: documents must be a list of haystack Documents, got {type(documents).__name__}; "
            "embed a string with the text embedder"
        )
    items = list(documents)
    for index, item in enumerate(items):
        if not isinstance(item, Document):
            raise InputTypeError(f"{where}: documents[{index}] must be a haystack Document, got {type(item).__name__}")
    return items


def document_texts(documents: Sequence[Document], meta_fields: Sequence[str], separator: str, where: str) -> list[str]:
    """What each document embeds: its ``meta_fields`` values then its content, joined by ``separator``
    (Haystack's ``meta_fields_to_embed``).

    Raises:
        ValueError: A document without content (naming it), or without one of ``meta_fields``.
    """
    texts = []
    for index, document in enumerate(documents):
        if document.content is None:
            raise InputError(
                f"{where}: {_which(index, document)} has no content (content is None); give it text or leave it "
                "out; nothing was embedded"
            )
        values = []
        for key in meta_fields:
            value = document.meta.get(key)
            if value is None:
                raise InputError(
                    f"{where}: {_which(index, document)} has no meta field {key!r} (meta_fields_to_embed); "
                    "nothing was embedded"
                )
            values.append(str(value))
        texts.append(separator.join([*values, document.content]))
    return texts


def meta_instructions(documents: Sequence[Document], key: str | None, default: str, where: str) -> list[str]:
    """Each document's instruction: its ``meta[key]`` where it has one, else ``default``."""
    if key is None:
        return [default] * len(documents)
    out = []
    for index, document in enumerate(documents):
        value: Any = document.meta.get(key)
        if value is None:
            out.append(default)
        elif not isinstance(value, str):
            raise InputTypeError(
                f"{where}: {_which(index, document)} meta[{key!r}] (its instruction) must be a str, got "
                f"{type(value).__name__}; nothing was embedded"
            )
        else:
            out.append(value)
    return out


def check_meta_fields(value: object, where: str) -> list[str]:
    """``meta_fields_to_embed`` as a list of keys (None: none)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InputTypeError(f"{where}: meta_fields_to_embed must be a list of meta keys, got {value!r:.60}")
    for key in value:
        if not isinstance(key, str):
            raise InputTypeError(f"{where}: meta_fields_to_embed holds {key!r:.40}, not a str")
    return list(value)
