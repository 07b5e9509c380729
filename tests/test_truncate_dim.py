"""Matryoshka truncation over generated dimensions and texts (Hypothesis): ``truncate_dim=d`` keeps
the first ``d`` dimensions of the model's own vector, then normalizes them (sentence-transformers'
order: truncate, then normalize), so the result is unit length and points the same way as the
untruncated vector's prefix; unnormalized, it is that prefix exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tiny_models import corpus_lines

PROPERTY = settings(max_examples=25, deadline=None, database=None)
TEXTS = corpus_lines(12)


@PROPERTY
@given(data=st.data())
def test_truncate_then_normalize(tiny_bert_encoder, data):
    encoder = tiny_bert_encoder
    dimension = data.draw(st.integers(1, encoder.model_dimension), label="truncate_dim")
    texts = data.draw(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=4), label="texts")
    full = encoder.encode_queries(texts, normalize=False)
    prefix = full[:, :dimension]
    raw = encoder.encode_queries(texts, truncate_dim=dimension, normalize=False)
    np.testing.assert_allclose(raw, prefix, rtol=1e-5, atol=1e-6)
    unit = encoder.encode_queries(texts, truncate_dim=dimension)
    assert unit.shape == (len(texts), dimension)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    expected = prefix / np.linalg.norm(prefix, axis=1, keepdims=True)
    np.testing.assert_allclose(unit, expected, rtol=1e-4, atol=1e-5)
    # normalizing first and truncating after would not be unit length (unless the rest were zero)
    if dimension < encoder.model_dimension:
        normalized_first = encoder.encode_queries(texts)[:, :dimension]
        assert np.all(np.linalg.norm(normalized_first, axis=1) < 1.0 - 1e-6)
