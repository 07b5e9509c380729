"""The encoder reproduces SentenceTransformer(path).encode(texts, prompt=instruction) exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import corpus_lines

st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is the test-only reference")

INSTRUCTIONS = [
    "Represent the question for retrieving supporting documents: ",
    "Represent the document for retrieval: ",
    "Represent the Science sentence: ",
    "Represent the Wikipedia text for classifying its topic: ",
    "",
]


def reference(path, pairs):
    """sentence-transformers' vectors, one encode call per instruction."""
    model = st.SentenceTransformer(str(path), device="cpu")
    out = None
    for instruction in {i for i, _ in pairs}:
        index = [n for n, (i, _) in enumerate(pairs) if i == instruction]
        vectors = model.encode([pairs[n][1] for n in index], prompt=instruction or None, batch_size=16)
        if out is None:
            out = np.zeros((len(pairs), vectors.shape[1]), dtype=np.float32)
        out[index] = vectors
    return out


def varied_pairs(n: int):
    lines = corpus_lines(n)
    lines[3] = "word " * 200  # longer than max_length: truncation must match too
    lines[5] = ""
    return [(INSTRUCTIONS[k % len(INSTRUCTIONS)], text) for k, text in enumerate(lines)]


def test_t5_instructor_layout_mixed_instructions_match_reference(tiny_t5_encoder, tiny_t5_path):
    pairs = varied_pairs(60)
    assert len({i for i, _ in pairs}) == 5
    ours = tiny_t5_encoder.encode(pairs, batch_size=8)
    ref = reference(tiny_t5_path, pairs)
    assert ours.dtype == np.float32 and ours.shape == (60, 24)
    assert np.abs(ours - ref).max() <= 1e-5


def test_t5_per_query_and_document_calls_match_reference(tiny_t5_encoder, tiny_t5_path):
    texts = corpus_lines(50)
    model = st.SentenceTransformer(str(tiny_t5_path), device="cpu")
    q = tiny_t5_encoder.encode_queries(texts, INSTRUCTIONS[0])
    d = tiny_t5_encoder.encode_documents(texts, INSTRUCTIONS[1], batch_size=5)
    assert np.abs(q - model.encode(texts, prompt=INSTRUCTIONS[0])).max() <= 1e-5
    assert np.abs(d - model.encode(texts, prompt=INSTRUCTIONS[1])).max() <= 1e-5


def test_instruction_is_left_out_of_pooling(tiny_t5_encoder):
    # Independent of pool(): the transformer's hidden states, averaged by hand over the positions
    # after the instruction, then Dense and L2 normalisation, must be what encode returns.
    import torch

    encoder = tiny_t5_encoder
    instruction, text = INSTRUCTIONS[2], "the cell protein gene study"
    assert encoder.spec.pooling == "mean" and not encoder.spec.include_prompt
    ids = encoder.tokenizer(instruction + text, add_special_tokens=True)["input_ids"]
    skip = encoder.prompt_length(instruction)
    assert 3 < skip < len(ids) - 1
    with torch.inference_mode():
        hidden = encoder.transformer(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)
        )[0][0]

        def finish(pooled):
            for layer in encoder.dense:
                pooled = layer(pooled)
            return torch.nn.functional.normalize(pooled, p=2, dim=-1).numpy()

        text_only = finish(hidden[skip:].mean(dim=0, keepdim=True))
        with_prompt = finish(hidden.mean(dim=0, keepdim=True))
    got = encoder.encode_documents([text], instruction)
    assert np.abs(got - text_only).max() <= 1e-6
    assert np.abs(got - with_prompt).max() > 1e-3  # pooling the instruction too is told apart


def test_bert_layout_with_and_without_prompts_matches_reference(tiny_bert_encoder, tiny_bert_path):
    texts = corpus_lines(50)
    model = st.SentenceTransformer(str(tiny_bert_path), device="cpu")
    assert np.abs(tiny_bert_encoder.encode_documents(texts, "") - model.encode(texts)).max() <= 1e-5
    # the folder's own prompts are the defaults, and BERT pools over them (include_prompt true)
    q = tiny_bert_encoder.encode_queries(texts)
    d = tiny_bert_encoder.encode_documents(texts)
    assert np.abs(q - model.encode(texts, prompt_name="query")).max() <= 1e-5
    assert np.abs(d - model.encode(texts, prompt_name="document")).max() <= 1e-5
    assert np.abs(q - d).max() > 1e-3


def test_minilm_matches_reference(minilm_encoder, minilm_path):
    texts = corpus_lines(40) + ["A man is playing a guitar.", "Ünïcode — and emoji 🎸 too"]
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    assert np.abs(minilm_encoder.encode_documents(texts) - model.encode(texts)).max() <= 1e-5
    prompt = "Represent the sentence: "
    assert np.abs(minilm_encoder.encode_queries(texts, prompt) - model.encode(texts, prompt=prompt)).max() <= 1e-5


def test_batch_size_and_order_do_not_change_vectors(tiny_t5_encoder):
    pairs = varied_pairs(30)
    one = tiny_t5_encoder.encode(pairs, batch_size=1)
    many = tiny_t5_encoder.encode(pairs, batch_size=64)
    reversed_ = tiny_t5_encoder.encode(pairs[::-1], batch_size=7)[::-1]
    assert np.abs(one - many).max() <= 1e-5
    assert np.abs(one - reversed_).max() <= 1e-5
