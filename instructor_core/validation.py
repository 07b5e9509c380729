"""Input checks shared by the encoder, the adapters and the CLI: clear errors that name the item."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from instructor_core.errors import InputError, InputTypeError

__all__ = ["check_instruction", "check_pairs", "check_positive_int", "check_text", "check_texts"]


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str) -> str | None:
    """The problem with a string that no store can keep exactly, or None when it is fine.

    Lone surrogates (``"\\ud800"``, which a JSON escape can produce) are not Unicode scalar values:
    they cannot be encoded as UTF-8, so no store can hold them. NUL characters are allowed: embedded
    Chroma and Qdrant's local mode store and return them exactly (checked with chromadb 1.5.9 and
    qdrant-client 1.20.0: ids, documents, metadata and payloads).

    Args:
        text: A record's text (or id, or a metadata string value).

    Returns:
        One sentence naming the problem and its position, or None.
    """
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"holds a lone surrogate U+{ord(found.group()):04X} at character {found.start()} "
        "(not a Unicode character: it cannot be stored as UTF-8)"
    )


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_positive_int(value: object, what: str) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool), else raise a ValueError naming ``what``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{what} must be a positive int, got {value!r}")
    return value


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """Return ``texts`` as a list of str, or raise naming the first bad item.

    Raises:
        TypeError: If ``texts`` is a bare string, not iterable, or holds a non-string.
    """
    if isinstance(texts, (str, bytes)):
        raise InputTypeError(
            f"{what} must be a list of strings, got a single {type(texts).__name__}; wrap it: [{_describe(texts)}]"
        )
    if texts is None or not isinstance(texts, Iterable):
        raise InputTypeError(f"{what} must be a list of strings, got {type(texts).__name__}")
    items = list(texts)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InputTypeError(f"{what}[{index}] must be a str, got {type(item).__name__}: {_describe(item)}")
    return items


def check_instruction(instruction: object, what: str = "instruction") -> str:
    """Return ``instruction`` if it is a str, else raise a TypeError saying what was given."""
    if not isinstance(instruction, str):
        raise InputTypeError(
            f"{what} must be a str (use '' for none), got {type(instruction).__name__}: {_describe(instruction)}"
        )
    return instruction


def check_pairs(pairs: object, what: str = "pairs") -> list[tuple[str, str]]:
    """Return ``pairs`` as a list of (instruction, text) tuples, or raise naming the bad item."""
    if isinstance(pairs, (str, bytes)) or pairs is None or not isinstance(pairs, Iterable):
        raise InputTypeError(f"{what} must be a list of (instruction, text) pairs, got {type(pairs).__name__}")
    out: list[tuple[str, str]] = []
    for index, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InputTypeError(
                f"{what}[{index}] must be an (instruction, text) pair, got {type(pair).__name__}: {_describe(pair)}"
            )
        instruction, text = pair
        if not isinstance(instruction, str):
            raise InputTypeError(
                f"{what}[{index}][0] (the instruction) must be a str, got {type(instruction).__name__}: "
                f"{_describe(instruction)}"
            )
        if not isinstance(text, str):
            raise InputTypeError(
                f"{what}[{index}][1] (the text) must be a str, got {type(text).__name__}: {_describe(text)}"
            )
        out.append((instruction, text))
    return out
