"""Text made safe for a message or a terminal line.

A stored text, a file name or a value from a model folder is data someone else wrote: an ESC
sequence in it can recolour, move the cursor or retitle the terminal, and a bidi override (U+202E)
can make a line read differently from what it holds. :func:`printable` escapes them for
human-readable output (JSON output is left exact: its encoder escapes C0 controls itself);
:func:`short_repr` cuts a long value in an error line. Library code (the stores, the loaders) and
the CLI share them, so they live here rather than in the CLI package.
"""

from __future__ import annotations

import re

__all__ = ["printable", "short_repr"]

# C0 controls (tab and newline too: one hit, one line), DEL, C1 controls, and the Unicode
# bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates
# (U+2066-U+2069), the marks LRM, RLM and ALM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control and bidi formatting characters shown as escapes (``\\x1b``, ``\\u202e``).

    Examples:
        >>> printable("\\x1b[31mred\\u202eRTL")
        '\\\\x1b[31mred\\\\u202eRTL'
    """
    return _UNSAFE.sub(_escape, text)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was: a 10,000-character
    name is not echoed whole in an error line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"
