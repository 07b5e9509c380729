"""Ingest engines behind one small protocol, found by entry point, as stores are.

``instructor ingest --engine NAME`` runs the engine registered under ``NAME`` in the entry-point
group ``instructor.engines``; its value is an :class:`Engine` object. This package registers
``local`` (this process, the default; :mod:`instructor_core.cli.commands.store`) and ``ray``
(:mod:`instructor_ray.cli`); a third party adds one by shipping its own entry point::

    [project.entry-points."instructor.engines"]
    dask = "instructor_dask.cli:ENGINE"

An engine adds its own options to the ``ingest`` parser (loading it must stay cheap: import the
engine's stack in ``run``), and ``run`` ingests with them. No integration is imported here.
"""

from __future__ import annotations

import argparse
import functools
from importlib.metadata import entry_points
from typing import Any, Protocol

__all__ = ["DEFAULT_ENGINE", "ENTRY_POINT_GROUP", "Engine", "add_engine_options", "engines", "run_engine"]

#: The entry-point group engines register under.
ENTRY_POINT_GROUP = "instructor.engines"
#: The engine ``ingest`` runs without ``--engine``.
DEFAULT_ENGINE = "local"


class Engine(Protocol):
    """An ingest engine for the CLI.

    Attributes:
        description: One line for ``--engine``'s help (``"embed on a Ray cluster with Ray Data"``).
    """

    description: str

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add the engine's own options to the ``ingest`` parser (in an argument group of its own)."""
        ...

    def run(self, args: argparse.Namespace, *, model: str, store: str) -> int:
        """Ingest ``args.corpus`` into ``args.collection`` of ``store`` with ``model``; the exit code."""
        ...


class _Unavailable:
    """An engine whose entry point fails to load (its extra is not installed): listed, refused when run."""

    description = "not installed"

    def __init__(self, name: str, error: ImportError) -> None:
        self.name, self.error = name, error

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Nothing: the engine's options are unknown."""

    def run(self, args: argparse.Namespace, *, model: str, store: str) -> int:
        raise ImportError(f"--engine {self.name}: {self.error}") from self.error


@functools.lru_cache(maxsize=1)
def _registered() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except ImportError as exc:
            found[ep.name] = _Unavailable(ep.name, exc)
    return found


def engines(local: Engine | None = None) -> dict[str, Engine]:
    """The registered engines, ``{name: engine}``; ``local`` (the caller's single-process engine,
    registered too) stands in where the package metadata lacks the entry point."""
    found = dict(_registered())
    if local is not None:
        found.setdefault(DEFAULT_ENGINE, local)
    return found


def add_engine_options(parser: argparse.ArgumentParser, *, local: Engine | None = None) -> None:
    """``--engine`` (one choice per registered engine) and each engine's own options."""
    found = engines(local)
    listed = "; ".join(f"{name}: {found[name].description}" for name in sorted(found))
    parser.add_argument("--engine", choices=sorted(found), default=DEFAULT_ENGINE, help=f"{listed} (default: local)")
    for name in sorted(found):
        found[name].add_options(parser)


def run_engine(args: argparse.Namespace, *, model: str, store: str, local: Engine | None = None) -> int:
    """Run the engine ``args.engine`` names."""
    return engines(local)[getattr(args, "engine", DEFAULT_ENGINE)].run(args, model=model, store=store)
