"""Long texts: counting those a model cuts at its max length, and splitting them into token windows.

A model reads at most ``max_length`` tokens (256 for all-MiniLM-L6-v2, 512 for INSTRUCTOR); the rest of a
longer text is dropped. :class:`TruncationTally` counts the texts an ingest or an embed cut (from the
encoder's own tokenization, :meth:`~instructor_core.model.encoder.InstructorEncoder.watch_truncation`),
so the summary line can say so. :func:`chunk_records` splits each long record into windows of the model's
own tokens, ``ID#0``, ``ID#1``, ... with the parent id and the window in the metadata; :func:`best_per_parent`
keeps the best window of each document among search hits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from instructor_core.errors import InputError

__all__ = [
    "PARENT_KEY",
    "WINDOW_KEY",
    "ChunkSettings",
    "TruncationTally",
    "best_per_parent",
    "chunk_records",
    "parent_of",
    "token_windows",
    "watching",
]

#: Metadata keys of a window: the record it came from, and its place (0-based) among that record's windows.
PARENT_KEY = "parent_id"
WINDOW_KEY = "window"

H = TypeVar("H")


class TruncationTally:
    """How many texts were cut at the model's max length, and the first of them (a record id or a label).

    Mutable on purpose: an ingest adds each batch's flags to it as the batch is embedded.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def add(self, labels: Sequence[str], flag_lists: Iterable[Sequence[bool]]) -> None:
        """Count the labels whose flag is True in any of ``flag_lists`` (one list per encode of these texts:
        named vectors encode each text once per view)."""
        cut = [False] * len(labels)
        for flags in flag_lists:
            if len(flags) != len(labels):  # not an encode of these texts: nothing to say about them
                continue
            cut = [a or bool(b) for a, b in zip(cut, flags, strict=True)]
        for label, was_cut in zip(labels, cut, strict=True):
            if was_cut:
                self.count += 1
                if self.first is None:
                    self.first = label

    def describe(self, max_length: int | None) -> str:
        """``"3 texts longer than the model's max length (256 tokens) were cut, the first 'doc7'"``; "" for none."""
        if not self.count:
            return ""
        limit = f" ({max_length} tokens)" if max_length else ""
        texts, were = ("text", "was") if self.count == 1 else ("texts", "were")
        return f"{self.count} {texts} longer than the model's max length{limit} {were} cut, the first {self.first!r}"


@contextlib.contextmanager
def watching(encoder: Any) -> Iterator[list[list[bool]]]:  # noqa: ANN401 (any Encoder)
    """``encoder.watch_truncation()`` where the encoder has it (the local encoder); an empty list that stays
    empty elsewhere (a remote encoder: its server counts nothing back)."""
    watch = getattr(encoder, "watch_truncation", None)
    if not callable(watch):
        yield []
        return
    with watch() as flags:
        yield flags


@dataclass(frozen=True)
class ChunkSettings:
    """Token windows for long texts.

    Attributes:
        tokens: Tokens per window (the model's own tokens, without special tokens or the instruction).
        overlap: Tokens a window shares with the one before it; less than ``tokens``.
    """

    tokens: int
    overlap: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise InputError(f"--chunk-tokens {self.tokens!r}: expected a positive whole number of tokens")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            raise InputError(f"--chunk-overlap {self.overlap!r}: expected a whole number of tokens, 0 or more")
        if self.overlap >= self.tokens:
            raise InputError(
                f"--chunk-overlap {self.overlap} must be less than --chunk-tokens {self.tokens} (each window moves on)"
            )

    def check_fits(self, encoder: Any, instruction: str) -> None:  # noqa: ANN401 (an InstructorEncoder)
        """Refuse windows that the model would cut again: ``tokens`` plus the instruction's tokens and the
        special tokens must fit in the encoder's ``max_length``; and a tokenizer that gives no word
        boundaries (a slow tokenizer; a remote encoder has none here)."""
        tokenizer = getattr(encoder, "tokenizer", None)
        max_length = getattr(encoder, "max_length", None)
        if tokenizer is None or max_length is None:
            raise InputError("--chunk-tokens needs the model here (its tokenizer splits the texts): drop --server")
        if not getattr(tokenizer, "is_fast", False):
            raise InputError("--chunk-tokens needs a fast tokenizer (tokenizer.json), and this model has a slow one")
        instruction_ids = tokenizer(instruction, add_special_tokens=True)["input_ids"] if instruction else []
        specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
        room = max_length - max(len(instruction_ids), specials)
        if self.tokens > room:
            raise InputError(
                f"--chunk-tokens {self.tokens}: the model reads {max_length} tokens, of which the document "
                f"instruction and special tokens take {max_length - room}; at most --chunk-tokens {room}"
            )


def token_windows(word_ids: Sequence[int | None], size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` token ranges of at most ``size`` tokens covering ``word_ids``' tokens, each starting
    about ``overlap`` tokens before the previous one ended.

    A window ends before a word's first token rather than inside the word, and the next one starts on a
    word's first token, so re-tokenizing a window's text gives its tokens back (unless one word is longer
    than a window: then it is cut where the window is full).
    """
    total = len(word_ids)
    if total <= size:
        return [(0, total)]

    def starts_word(i: int) -> bool:
        return i == 0 or word_ids[i] is None or word_ids[i] != word_ids[i - 1]

    windows: list[tuple[int, int]] = []
    start, previous_end = 0, 0
    for _ in range(total):  # each window starts at least one token later: bounded by the token count
        end = min(start + size, total)
        if end < total:
            cut = end
            while cut > previous_end + 1 and cut > start + 1 and not starts_word(cut):
                cut -= 1
            end = cut if starts_word(cut) and cut > previous_end else end  # each window adds tokens
        windows.append((start, end))
        previous_end = end
        if end >= total:
            break
        nxt = max(end - overlap, start + 1)
        while nxt < end and not starts_word(nxt):
            nxt += 1
        start = nxt
    return windows


def chunk_records(records: Iterable[Any], tokenizer: Any, settings: ChunkSettings) -> Iterator[Any]:  # noqa: ANN401
    """The records with each text longer than ``settings.tokens`` tokens split into windows.

    A window is a record ``{"id": "ID#k", "text": <the window's text>, "metadata": {..., "parent_id": ID,
    "window": k}}`` (k from 0); a text that fits is passed on unchanged, as is anything that is not a
    record with a string id and text (the ingest's validation names it).

    Args:
        records: Records ``{"id", "text", "metadata"}``; any iterable, read lazily.
        tokenizer: The model's own (fast) tokenizer.
        settings: Window size and overlap.
    """
    for record in records:
        if not isinstance(record, Mapping) or not isinstance(record.get("text"), str):
            yield record
            continue
        text = record["text"]
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = encoding["offset_mapping"]
        if len(offsets) <= settings.tokens or record.get("id") is None:
            yield record
            continue
        given = record.get("metadata")
        metadata: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        parent = str(record["id"])
        for k, (start, end) in enumerate(token_windows(encoding.word_ids(), settings.tokens, settings.overlap)):
            yield {
                **record,
                "id": f"{parent}#{k}",
                "text": text[offsets[start][0] : offsets[end - 1][1]],
                "metadata": {**metadata, PARENT_KEY: parent, WINDOW_KEY: k},
            }


def parent_of(hit_id: str, metadata: Mapping[str, Any]) -> str:
    """The document a hit belongs to: its ``parent_id`` where it is a window, else its own id."""
    parent = metadata.get(PARENT_KEY)
    return str(parent) if parent is not None else hit_id


def best_per_parent(hits: Sequence[H], k: int, key: Callable[[H], str]) -> list[H]:
    """The first (best) hit of each parent, in rank order, at most ``k``."""
    seen: set[str] = set()
    out: list[H] = []
    for hit in hits:
        parent = key(hit)
        if parent in seen:
            continue
        seen.add(parent)
        out.append(hit)
        if len(out) == k:
            break
    return out
