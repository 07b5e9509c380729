"""Stores found by entry point: a store URL (``SCHEME:DIR``, ``SCHEME+http(s)://HOST:PORT``) names a
registered factory; :func:`store_factory` declares on it the checks the core runs before a store is
opened or created (what it can hold, its collection-name rule, the file that marks its folders)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from inspect import signature
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from instructor_core.errors import InputError, InputTypeError
from instructor_core.ingest.store_errors import (
    StoreError,
)

if TYPE_CHECKING:
    from instructor_core.ingest.stores import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "check_collection_name",
    "check_features",
    "check_store_kind",
    "open_store",
    "split_store_url",
    "store_factory",
    "store_schemes",
]


#: The entry-point group stores register under.
ENTRY_POINT_GROUP = "instructor.stores"


def split_store_url(url: str) -> tuple[str, str]:
    """``"chroma:./db"`` -> ``("chroma", "./db")``; ``"qdrant+http://h:6333"`` -> ``("qdrant", "http://h:6333")``.

    Raises:
        ValueError: Naming the accepted forms.
    """
    forms = "SCHEME:DIR (an embedded store) or SCHEME+http://HOST:PORT (a server), e.g. chroma:./db"
    if not isinstance(url, str):
        raise InputTypeError(f"a store URL must be a str, got {type(url).__name__}")
    plus, colon = url.find("+"), url.find(":")
    if 0 < plus < colon:
        scheme, rest = url[:plus], url[plus + 1 :]
        if not rest.startswith(("http://", "https://")):
            raise InputError(f"store {url!r}: expected {scheme}+http://HOST:PORT")
        return scheme, rest.rstrip("/")
    if colon > 0 and url[colon + 1 :]:
        return url[:colon], url[colon + 1 :]
    raise InputError(f"store {url!r}: expected {forms}")


def store_schemes() -> dict[str, EntryPoint]:
    """The registered stores: ``{scheme: entry point}``."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


_Factory = TypeVar("_Factory", bound=Callable[..., Any])


def store_factory(
    features: frozenset[str] | set[str] = frozenset(),
    feature_notes: Mapping[str, str] | None = None,
    *,
    check_name: Callable[[str, str], object] | None = None,
    marker: tuple[str, str] | None = None,
) -> Callable[[_Factory], _Factory]:
    """Declare on a store's registered factory the checks the core runs before the store is opened
    or created, so that a refusal never leaves a new store folder behind and the core names no
    store: what its collections can hold (:func:`check_features`), its own collection-name rule
    (:func:`check_collection_name`), and the file that marks a folder as its own
    (:func:`check_store_kind`). A factory without a declaration is checked when it is used.

    Args:
        features: The layout features its stores hold (as :attr:`BaseStore.features`).
        feature_notes: Why it lacks one, by feature (as :attr:`BaseStore.feature_notes`).
        check_name: ``check_name(location, name)`` raises an :class:`InputError` naming the rule.
        marker: ``(file name, what it is)``: a file only its embedded folders hold
            (``("chroma.sqlite3", "a Chroma store")``).
    """

    def declare(factory: _Factory) -> _Factory:
        factory.features = frozenset(features)  # type: ignore[attr-defined]
        factory.feature_notes = dict(feature_notes or {})  # type: ignore[attr-defined]
        factory.check_name = check_name  # type: ignore[attr-defined]
        factory.marker = marker  # type: ignore[attr-defined]
        return factory

    return declare


def _declared(scheme: str) -> Any:  # noqa: ANN401 (a factory, or None)
    """The registered factory of ``scheme``, or None (not registered, or its extra missing: opening
    the store says so)."""
    entry = store_schemes().get(scheme)
    if entry is None:
        return None
    try:
        return entry.load()
    except ImportError:
        return None


def check_features(url: str, wanted: Sequence[str]) -> None:
    """Refuse layout features the store ``url`` names has declared it cannot hold
    (:func:`store_factory`), before anything is opened or created. Unknown schemes and factories
    that declare nothing pass (they are asked when the collection is made).

    Raises:
        StoreError: Naming the store, the features and why.
    """
    if not wanted:
        return
    factory = _declared(split_store_url(url)[0])
    held = getattr(factory, "features", None)
    if held is None:
        return
    missing = sorted(set(wanted) - set(held))
    if missing:
        notes = getattr(factory, "feature_notes", {})
        why = [notes[f] for f in missing if f in notes]
        raise StoreError(
            f"--store {url} cannot hold {' or '.join(missing)} collections"
            + (f" ({'; '.join(why)})" if why else "")
            + "; nothing was created"
        )


def check_collection_name(url: str, name: str) -> None:
    """Refuse a collection name the store ``url`` names would refuse, by its declared rule
    (:func:`store_factory`), before the store is opened: a bad name never leaves a new store folder
    behind. Stores that declare no rule check the name when they use it.

    Raises:
        InputError: Naming the rule (a long name cut short).
    """
    scheme, location = split_store_url(url)
    check = getattr(_declared(scheme), "check_name", None)
    if check is not None:
        check(location, name)


def check_store_kind(url: str) -> None:
    """Refuse ``chroma:DIR`` on a folder that holds another store (a Qdrant Edge one, say) before it is
    opened: each registered factory declares the file that marks its folders (:func:`store_factory`),
    and the message names the store that is there and the URL to use.

    Raises:
        InputError: Naming the store the folder holds.
    """
    try:
        scheme, location = split_store_url(url)
    except InputError:
        return  # opening it says what is wrong with the URL
    folder = Path(location).expanduser()
    if location.startswith(("http://", "https://")) or not folder.is_dir():
        return
    own = getattr(_declared(scheme), "marker", None)
    if own is not None and (folder / own[0]).is_file():
        return
    for other in store_schemes():
        theirs = getattr(_declared(other), "marker", None) if other != scheme else None
        if theirs is not None and (folder / theirs[0]).is_file():
            raise InputError(f"--store {url}: {location} is {theirs[1]} ({theirs[0]}); use --store {other}:{location}")


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store a URL names, through its registered factory.

    A factory is ``open_store(location, *, create=True)``; with ``create=False`` an embedded store
    that does not exist raises :class:`StoreNotFoundError` instead of being made, so reading
    commands (search, collections) never leave an empty store behind a mistyped path. A factory
    without the ``create`` parameter is called with the location alone.

    Args:
        url: ``SCHEME:DIR`` or ``SCHEME+http(s)://HOST:PORT``.
        create: Make an embedded store that does not exist yet (ingest) or refuse (everything else).

    Raises:
        ValueError: A malformed URL or an unknown scheme (the message lists the known ones).
        ImportError: The store's extra is not installed (the message names it).
        StoreNotFoundError: ``create=False`` and there is no store at the location.
        StoreError: The store cannot be opened.
    """
    scheme, location = split_store_url(url)
    schemes = store_schemes()
    if scheme not in schemes:
        known = ", ".join(sorted(schemes)) or "none (is the package installed?)"
        raise InputError(f"store {url!r}: unknown store {scheme!r}; registered stores: {known}")
    factory: Callable[..., Store] = schemes[scheme].load()
    if _accepts_create(factory):
        return factory(location, create=create)
    return factory(location)


def _accepts_create(factory: Callable[..., Any]) -> bool:
    try:
        return "create" in signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False
