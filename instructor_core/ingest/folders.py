"""A folder of text files as a corpus: one record per file, its path as id.

:class:`TextFolderReader` reads the files under a folder that match glob patterns, in path order,
and lists what it leaves out (:class:`SkippedFile`: not matching, unreadable, empty, or a link to a
file outside the folder, which is never followed). :func:`files_inside` is the listing the corpus
front door (:func:`instructor_core.ingest.readers.corpus_shards`) uses for a folder of shards too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from instructor_core.errors import InputError
from instructor_core.ingest.records import RecordError

__all__ = [
    "DEFAULT_TEXT_PATTERNS",
    "LINK_OUTSIDE",
    "SkippedFile",
    "TextFolderReader",
    "files_inside",
    "read_text_folder",
]

#: What a folder ingest reads by default: text and Markdown files, at any depth.
DEFAULT_TEXT_PATTERNS: tuple[str, ...] = ("*.txt", "*.md")
#: A UTF-8 byte-order mark: an encoding marker, dropped from the start of a file.
BOM = "\ufeff"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``*`` and ``?`` stay within one path segment, ``**/`` spans any
    number of folders (none included), ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


LINK_OUTSIDE = "a link to a file outside the folder: not followed"


def files_inside(folder: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The files under ``folder`` (paths relative to it, "/" separators, sorted by segment), and
    apart the symbolic links among them that lead out of the folder, which a reader must not follow
    (a planted ``notes.md -> ~/.ssh/id_rsa`` would be embedded and searchable). Links to folders are
    not descended into; a link to a file inside the folder is kept.
    """
    root = Path(folder)
    top = root.resolve()
    inside: list[str] = []
    outside: list[str] = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() and not path.resolve().is_relative_to(top):
            outside.append(rel)
        else:
            inside.append(rel)
    return sorted(inside, key=lambda rel: rel.split("/")), sorted(outside, key=lambda rel: rel.split("/"))


@dataclass(frozen=True)
class SkippedFile:
    """A file a folder reader did not read.

    Attributes:
        path: Its path relative to the folder, with "/" separators.
        reason: Why, in a few words ("does not match *.txt, *.md", "not UTF-8 at line 3", ...).
    """

    path: str
    reason: str


class TextFolderReader:
    """One record per text file under a folder (recursively, sorted by path); iterate it.

    The id is the file's path relative to the folder (with "/" separators), the text its whole
    content (UTF-8, unchanged but for a leading byte-order mark), the metadata ``{"path": <that
    relative path>}``. After (or during) iteration :attr:`skipped` lists the files left out, so a
    caller can say what it did not read.

    Args:
        folder: The folder.
        patterns: Glob patterns a file must match (any of them). A pattern without "/" matches the
            file name at any depth ("*.txt"); one with "/" matches the path relative to the folder,
            where ``*`` stays within a folder and ``**/`` spans any number of them ("docs/*.md",
            "docs/**/*.md"). Default: ``*.txt`` and ``*.md``.
        on_unreadable: "error" (default) raises :class:`RecordError` naming the file and line for a
            file that is not UTF-8 or cannot be opened; "skip" lists it in :attr:`skipped` and goes on.

    Raises:
        FileNotFoundError: If ``folder`` is not a folder.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        patterns: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
        on_unreadable: Literal["error", "skip"] = "error",
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder} is not a folder")
        self.patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        if not self.patterns or not all(isinstance(p, str) and p for p in self.patterns):
            raise InputError(f"patterns must be non-empty glob strings, got {patterns!r}")
        if on_unreadable not in ("error", "skip"):
            raise InputError(f"on_unreadable must be 'error' or 'skip', got {on_unreadable!r}")
        self.on_unreadable = on_unreadable
        #: Files left out so far, in path order: not matching the patterns, or unreadable ("skip").
        self.skipped: list[SkippedFile] = []

    def _matches(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(_glob_regex(p).fullmatch(rel if "/" in p else name) for p in self.patterns)

    def _unreadable(self, rel: str, reason: str, number: int) -> None:
        if self.on_unreadable == "error":
            raise RecordError(f"{self.folder / rel}: {reason}", index=number)
        self.skipped.append(SkippedFile(rel, reason))

    def __iter__(self) -> Iterator[dict]:
        self.skipped = []
        files, outside = files_inside(self.folder)
        self.skipped.extend(SkippedFile(rel, LINK_OUTSIDE) for rel in outside)
        wanted = ", ".join(self.patterns)
        number = 0
        for rel in files:
            if not self._matches(rel):
                self.skipped.append(SkippedFile(rel, f"does not match {wanted}"))
                continue
            try:
                data = (self.folder / rel).read_bytes()
            except OSError as exc:
                self._unreadable(rel, f"cannot be read ({exc.strerror or exc})", number)
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                self._unreadable(rel, f"not UTF-8 at line {line} (byte 0x{data[exc.start]:02x})", number)
                continue
            if text.startswith(BOM):
                text = text[1:]
            if not text.strip():  # nothing to embed or find: listed with the skipped files
                self.skipped.append(SkippedFile(rel, "empty (whitespace only)"))
                continue
            yield {"id": rel, "text": text, "metadata": {"path": rel}}
            number += 1


def read_text_folder(
    folder: str | os.PathLike[str],
    *,
    pattern: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
    on_unreadable: Literal["error", "skip"] = "error",
) -> Iterator[dict]:
    """Yield one record per text file under ``folder``; see :class:`TextFolderReader` (which also
    reports the files it skipped)."""
    return iter(TextFolderReader(folder, patterns=pattern, on_unreadable=on_unreadable))
