"""``instructor_core.model.quantization`` over generated embeddings (Hypothesis): equal to
sentence-transformers' ``quantize_embeddings`` value for value, int8/uint8 buckets spanning each
dimension's range (its minimum to the lowest bucket, its maximum to the highest), and binary
vectors packing the sign bits 8 to a byte, most significant first, zero-padded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from instructor_core.model.quantization import quantize_embeddings

theirs = pytest.importorskip("sentence_transformers.quantization").quantize_embeddings

PROPERTY = settings(max_examples=60, deadline=None, database=None)
_VALUES = st.floats(-8.0, 8.0, allow_nan=False, width=32)


@st.composite
def _embeddings(draw, min_rows: int = 2) -> np.ndarray:
    rows, dimension = draw(st.integers(min_rows, 6)), draw(st.integers(1, 40))
    return draw(arrays(np.float32, (rows, dimension), elements=_VALUES))


@PROPERTY
@given(embeddings=_embeddings(), precision=st.sampled_from(["int8", "uint8", "binary", "ubinary"]))
def test_equal_to_sentence_transformers(embeddings, precision):
    ours, reference = quantize_embeddings(embeddings, precision), theirs(embeddings, precision)
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    np.testing.assert_array_equal(ours, reference)


@PROPERTY
@given(embeddings=_embeddings(), calibration=_embeddings(), precision=st.sampled_from(["int8", "uint8"]))
def test_equal_to_sentence_transformers_with_calibration(embeddings, calibration, precision):
    if embeddings.shape[1] != calibration.shape[1]:
        calibration = np.resize(calibration, (calibration.shape[0], embeddings.shape[1]))
    ours = quantize_embeddings(embeddings, precision, calibration_embeddings=calibration)
    np.testing.assert_array_equal(ours, theirs(embeddings, precision, calibration_embeddings=calibration))


@PROPERTY
@given(embeddings=_embeddings())
def test_int8_buckets_span_each_dimensions_range(embeddings):
    uint8, int8 = quantize_embeddings(embeddings, "uint8"), quantize_embeddings(embeddings, "int8")
    assert uint8.dtype == np.uint8 and int8.dtype == np.int8 and uint8.shape == embeddings.shape
    np.testing.assert_array_equal(int8.astype(np.int16), uint8.astype(np.int16) - 128)
    low, high = embeddings.min(axis=0), embeddings.max(axis=0)
    for j in range(embeddings.shape[1]):
        column, buckets = embeddings[:, j], uint8[:, j].astype(int)
        assert buckets[column == low[j]].max() == 0  # the minimum: the lowest bucket
        if high[j] - low[j] > 1e-6:  # (a range of a few subnormals has steps of 0: every value in bucket 0)
            # the maximum: the highest bucket, or the one below where float32 rounding lands it just short
            assert buckets[column == high[j]].min() >= 254
            order = np.argsort(column, kind="stable")
            assert np.all(np.diff(buckets[order]) >= 0)  # monotone in the value


@PROPERTY
@given(embeddings=_embeddings(min_rows=1))
def test_binary_packs_the_sign_bits_eight_to_a_byte(embeddings):
    rows, dimension = embeddings.shape
    ubinary, binary = quantize_embeddings(embeddings, "ubinary"), quantize_embeddings(embeddings, "binary")
    assert ubinary.shape == binary.shape == (rows, -(-dimension // 8))
    assert ubinary.dtype == np.uint8 and binary.dtype == np.int8
    for i in range(rows):
        for j in range(dimension):  # bit j: byte j // 8, most significant bit first
            bit = (int(ubinary[i, j // 8]) >> (7 - j % 8)) & 1
            assert bit == int(embeddings[i, j] > 0)
        for j in range(dimension, ubinary.shape[1] * 8):
            assert (int(ubinary[i, j // 8]) >> (7 - j % 8)) & 1 == 0  # padding bits are zero
    np.testing.assert_array_equal(binary.astype(np.int16), ubinary.astype(np.int16) - 128)


#: The documented end-to-end tolerance (docs/encoder.md, "Quantized outputs"): the float vectors
#: agree with sentence-transformers' to about 1e-7, so a value sitting on a bucket's edge (or at 0,
#: for a sign bit) may land one bucket (one bit) over; at most this share of the values does.
END_TO_END_SHARE = 1e-3


@pytest.mark.slow
def test_encode_with_precision_is_within_the_documented_tolerance_of_sentence_transformers(minilm_encoder, minilm_path):
    """all-MiniLM-L6-v2 on 200 texts, quantized in the encode call: at most one bucket (one bit) off,
    on at most 0.1% of the values (measured: 10 of 76,800 int8 values, 0 of 76,800 bits); the
    quantization of the same floats is equal value for value."""
    import warnings

    from sentence_transformers import SentenceTransformer

    from tests.tiny_models import corpus_lines

    texts = corpus_lines(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SentenceTransformer(str(minilm_path), device="cpu")
    floats, their_floats = minilm_encoder.encode_documents(texts), model.encode(texts)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        mine = minilm_encoder.encode_documents(texts, precision=precision)
        reference = theirs(their_floats, precision)  # what their encode(precision=...) returns
        assert mine.dtype == reference.dtype and mine.shape == reference.shape
        if precision.endswith("binary"):
            off = np.unpackbits(mine.view(np.uint8) ^ reference.view(np.uint8))  # the bits that differ
        else:
            off = np.abs(mine.astype(np.int32) - reference.astype(np.int32))
            assert off.max() <= 1, precision
        assert (off > 0).mean() <= END_TO_END_SHARE, (precision, int((off > 0).sum()))
        np.testing.assert_array_equal(quantize_embeddings(floats, precision), theirs(floats, precision))
    np.testing.assert_array_equal(model.encode(texts[:50], precision="int8"), theirs(model.encode(texts[:50]), "int8"))
