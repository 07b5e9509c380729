"""The ingest side: records and their readers, deterministic ids, the ingest engine, the
storage-only store protocol, the one layer that encodes for the stores, and the engines.

Users import from :mod:`instructor_core` (and these modules); this package re-exports nothing.
"""

__all__: list[str] = []
