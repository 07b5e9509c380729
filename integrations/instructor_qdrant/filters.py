"""``{key: value}`` filters checked for what Qdrant can match, before a store is asked.

Qdrant reads a filter key as a JSON path (``a.b``, ``tags[]``) and matches a value exactly only where it
is a str, a 64-bit int or a bool (a list: all str or all int, any of them). Anything else is refused in one
line naming the filter, as Chroma's ``where`` is, instead of the engine's parser or its Rust conversion
failing mid-search. A key that is neither a plain key nor a path (``a b``, ``a/b``) is quoted, so it
matches the payload key as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from instructor_core.errors import InputError, InputTypeError
from instructor_core.messages import short_repr

__all__ = ["checked_filters"]

#: A key, or a path into nested values: ``topic``, ``a.b``, ``tags[]``, ``rows[0].name`` (Qdrant's own form).
_PATH = re.compile(r"[\w-]+(\[\d*\])*(\.[\w-]+(\[\d*\])*)*")
_INT64 = (-(2**63), 2**63 - 1)


def _key(key: object) -> str:
    if not isinstance(key, str) or not key or key.startswith("$"):
        raise InputError(f"filter key {short_repr(key)}: expected a metadata key (not empty, not a $ operator)")
    if _PATH.fullmatch(key):
        return key
    if '"' in key:
        raise InputError(f"filter key {short_repr(key)}: Qdrant cannot filter on a key with a double quote")
    if any(c in key for c in ".[]"):
        raise InputError(
            f"filter key {short_repr(key)}: not a key or a path Qdrant can read (a path is like a.b or tags[])"
        )
    return f'"{key}"'  # a key with a space, a slash, ...: quoted, Qdrant reads it as one key


def _scalar(key: str, value: object) -> str | int | bool:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InputError(f"filter {key!r}: {value} is past the 64-bit integers Qdrant matches")
        return value
    if isinstance(value, float):
        raise InputError(f"filter {key!r}: Qdrant matches a str, int or bool exactly, not the float {value!r}")
    raise InputError(
        f"filter {key!r}: the value must be a str, int or bool (or a list of them), got {type(value).__name__}"
    )


def checked_filters(filters: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(key as Qdrant reads it, value)`` for each filter; a list value stays a list (matches any item).

    Raises:
        InputError: A ``$`` operator or empty key, a key Qdrant cannot read, a float, an int past 64 bits,
            a list mixing str and int (or holding bools), naming the filter.
        InputTypeError: ``filters`` is not a mapping.
    """
    if not isinstance(filters, Mapping):
        raise InputTypeError(f"filters must be a mapping of metadata key to value, got {type(filters).__name__}")
    out: list[tuple[str, Any]] = []
    for key, value in filters.items():
        path = _key(key)
        if isinstance(value, list | tuple):
            items = [_scalar(key, item) for item in value]
            kinds = {type(item) for item in items}
            if not items or bool in kinds or len(kinds) > 1:
                raise InputError(f"filter {key!r}: a list matches any of its items, which must be all str or all int")
            out.append((path, items))
        else:
            out.append((path, _scalar(key, value)))
    return out
