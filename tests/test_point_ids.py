"""Point ids are pinned: a changed namespace or normalisation would duplicate every stored point.

Re-ingesting into an existing Qdrant collection upserts by ``point_id(document_id)``; if the
function ever maps the same id to another UUID, every document is stored twice. The literals
below were computed once from ``uuid5(NAMESPACE, document_id)`` and must never change.
"""

from __future__ import annotations

import uuid

import pytest

from instructor_core.ingest.records import point_id

PINNED = {
    "doc-1": "e443052b-6549-5388-a20f-ff5722cd66f8",
    "doc-2": "b27c9c4b-aa2e-5833-94d5-f89015f24d5a",
    "0": "7cb0b62c-9981-57d3-a1ac-654ef95513f7",
    "4983": "dd6ad1d1-a8f5-59ef-a2c1-467291245e91",
    "Ünïcode-id": "877c93fc-601f-53fa-92cb-f69d16765d00",
    "": "9ce89519-6d14-53a8-b047-8bfef662d701",
}


@pytest.mark.parametrize("document_id", sorted(PINNED))
def test_point_id_is_pinned(document_id):
    got = point_id(document_id)
    assert got == PINNED[document_id]
    assert uuid.UUID(got).version == 5


def test_ids_differing_in_case_or_whitespace_are_different_points():
    variants = ["a", "A", "a ", " a", "a\n", "a\t"]
    ids = [point_id(v) for v in variants]
    assert len(set(ids)) == len(variants)
    assert ids[:4] == [
        "94e9a005-fd23-55e0-8e5f-1a7308eccde5",
        "e0876c67-ebc5-56d3-983f-a0288c2faa3c",
        "a828b0b7-f8a3-5b60-ad9b-d6c9d7597c90",
        "301ac49a-f4bd-57c8-a048-e77fb94ab28b",
    ]
