"""What a store raises and warns: the error classes of :mod:`instructor_core.ingest.stores` and the
model check every store runs (another model's vectors never mix silently)."""

from __future__ import annotations

from collections.abc import Sequence

from instructor_core.errors import InstructorError

__all__ = [
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "ModelChangeWarning",
    "ModelMismatchError",
    "NoKeywordIndexError",
    "NoKeywordTermsWarning",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "check_model",
    "encoder_fingerprint",
]


class StoreError(InstructorError, RuntimeError):
    """An expected failure of a store: a missing collection, a mismatch, an unreachable server.
    Its message is one line, meant for the person at the terminal."""


class CollectionNotFoundError(StoreError, LookupError):
    """The named collection does not exist; the message lists the ones that do."""

    def __init__(self, name: str, store: str, existing: Sequence[str]) -> None:
        listed = ", ".join(repr(n) for n in sorted(existing)) if existing else "none"
        super().__init__(f"no collection {name!r} in {store} (collections there: {listed})")
        self.name = name
        self.existing = list(existing)


class StoreUnavailableError(StoreError):
    """The store cannot be reached or opened (a server down, a folder that is not a store)."""


class StoreNotFoundError(StoreError, LookupError):
    """An embedded store was opened to read (``create=False``) where there is none: a mistyped
    folder. Nothing was created."""

    def __init__(self, location: str, detail: str = "") -> None:
        super().__init__(f"no store at {location}" + (f" ({detail})" if detail else ""))
        self.location = location


class ModelMismatchError(StoreError, ValueError):
    """A collection was made with another model than the encoder at hand (another fingerprint):
    their vectors do not compare. Raised before anything is written or searched.

    Attributes:
        collection: The collection's name.
        stored: The fingerprint the collection records.
        current: The encoder's fingerprint.
    """

    def __init__(self, collection: str | None, stored: str, current: str, *, what: str = "model fingerprint") -> None:
        which = f"collection {collection!r}" if collection else "the collection"
        why = " (other weights or configuration, even under the same path)" if what == "model fingerprint" else ""
        super().__init__(
            f"{which} was made with {what} {stored}, the encoder at hand has {current}{why}: their vectors do "
            "not compare. Use the model it was made with or a new collection, or pass allow_model_change=True "
            "(CLI: --allow-model-change) to mix them on purpose"
        )
        self.collection = collection
        self.stored = stored
        self.current = current


class ModelChangeWarning(UserWarning):
    """An ingest into a collection made with another model, allowed on purpose
    (``allow_model_change``), that skips the records stored unchanged: those keep the old model's
    vectors. ``skip_unchanged=False`` (CLI: ``--reembed``) embeds them all with the new one."""


def encoder_fingerprint(encoder: object) -> str | None:
    """The encoder's model fingerprint (``InstructorEncoder.fingerprint``), or None for an encoder
    that has none (a test double, a model built in memory and never saved)."""
    try:
        value = getattr(encoder, "fingerprint", None)
    except ValueError:  # InstructorEncoder not loaded from a folder
        return None
    return value if isinstance(value, str) and value else None


def check_model(
    collection: str | None, stored: str | None, current: str | None, *, allow_model_change: bool = False
) -> None:
    """Refuse an encoder whose fingerprint differs from the one a collection records.

    Nothing is checked where either side is unknown (a collection made before fingerprints were
    recorded, an encoder without one), or where ``allow_model_change`` says the change is meant.

    Raises:
        ModelMismatchError: Naming both fingerprints.
    """
    if allow_model_change or stored is None or current is None or stored == current:
        return
    raise ModelMismatchError(collection, stored, current)


class CollectionMismatchError(StoreError, ValueError):
    """An existing collection does not fit the encoder (dimension, distance, vector names, instructions)."""


class NoKeywordTermsWarning(UserWarning):
    """A keyword (or hybrid) search whose query has no keyword terms left after the index's stop words
    and stemming ("the of"): its keyword ranking is empty. The CLI prints it as a note."""

    def __init__(self, query: str) -> None:
        super().__init__(
            f"no keyword terms in the query {query[:100]!r} (none left after stop words and stemming): "
            "its keyword ranking is empty; use other words or --mode dense"
        )


class NoKeywordIndexError(StoreError, ValueError):
    """A keyword or hybrid search of a collection made without a keyword index."""

    def __init__(self, name: str, mode: str) -> None:
        super().__init__(
            f"collection {name!r} has no keyword index, so it cannot be searched with mode {mode!r}: re-ingest "
            "the corpus with --hybrid (hybrid=True) into a new collection, or search with --mode dense"
        )
