"""A refit never serves a stale ONNX export, and GradCache replays dropout on the encoder's device."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from instructor_core import Instructions, InstructorEncoder
from instructor_core.training import InfoNCELoss, TrainConfig, TrainingRow, contrastive_step, prepare_encoder, train
from tests import tiny_models

Q = "Represent the question for retrieval: "
D = "Represent the passage: "


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread: conftest


@pytest.fixture
def onnx_cache(tmp_path):
    pytest.importorskip("onnxruntime", reason='the ONNX backends need the "onnx" extra')
    pytest.importorskip("onnxscript", reason='the ONNX backends need the "onnx" extra')
    return tmp_path / "onnx_cache"


def _rows(n: int) -> list[TrainingRow]:
    lines = tiny_models.corpus_lines(3 * n + 10)
    return [
        TrainingRow((Q, lines[3 * i]), (D, lines[3 * i + 1]), ((D, lines[3 * i + 2]),), "a" if i % 2 else "b")
        for i in range(n)
    ]


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_refit_of_an_onnx_loaded_encoder_encodes_with_the_refit_weights(
    tiny_bert_path, onnx_cache, tmp_path, caplog, chunk_size
):
    encoder = InstructorEncoder.from_pretrained(
        tiny_bert_path, device="cpu", backend="onnx", backend_cache_dir=onnx_cache
    )
    assert encoder.backend == "onnx"
    pairs = [(Q, line) for line in tiny_models.corpus_lines(12)]
    before = encoder.encode(pairs)
    config = TrainConfig(
        output_dir=tmp_path / "run",
        epochs=1,
        batch_size=4,
        learning_rate=3e-3,
        show_progress=False,
        instructions=Instructions(query=Q, document=D),
        chunk_size=chunk_size,
    )
    with caplog.at_level(logging.WARNING, logger="instructor_core.training.trainer"):
        result = train(encoder, _rows(8), config)
    assert any("ONNX" in record.getMessage() for record in caplog.records)
    assert encoder.backend == "torch"
    after = encoder.encode(pairs)
    # the reference: a torch-backend encoder that carries the refit weights (the saved folder)
    reference = InstructorEncoder.from_pretrained(result.model_path, device="cpu").encode(pairs)
    np.testing.assert_allclose(after, reference, atol=1e-5)
    assert np.abs(after - before).max() > 1e-3  # the refit moved the vectors: the export is not served


def test_contrastive_step_refuses_an_encoder_that_still_holds_a_runtime(tiny_bert_path, onnx_cache):
    encoder = InstructorEncoder.from_pretrained(
        tiny_bert_path, device="cpu", backend="onnx", backend_cache_dir=onnx_cache
    )
    with pytest.raises(ValueError, match="prepare_encoder"):
        contrastive_step(encoder, InfoNCELoss(), _rows(3), chunk_size=2)
    prepare_encoder(encoder)
    assert encoder.backend == "torch"
    contrastive_step(encoder, InfoNCELoss(), _rows(3), chunk_size=2)


def test_forward_runs_torch_in_train_mode_even_without_gradients(tiny_bert_path, onnx_cache):
    """The runtime belongs to eval mode: a no-gradient pass in train mode (GradCache) runs torch."""
    encoder = InstructorEncoder.from_pretrained(
        tiny_bert_path, device="cpu", backend="onnx", backend_cache_dir=onnx_cache
    )
    calls = []
    runtime = encoder._runtime

    def spy(input_ids, attention_mask):
        calls.append(input_ids.shape)
        return runtime(input_ids, attention_mask)

    encoder._runtime = spy
    batch = encoder.collate(encoder.tokenize([(Q, "a cell")]), [Q])
    encoder.train()
    with torch.no_grad():
        encoder.forward(batch)
    assert calls == []
    encoder.eval()
    with torch.no_grad():
        encoder.forward(batch)
    assert len(calls) == 1


@pytest.fixture
def bert_with_dropout(tmp_path, minilm_path):
    folder = tiny_models.build_bert_st(tmp_path / "bert", minilm_path, seed=3)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_gradcache_replays_dropout_and_leaves_the_rng_where_a_plain_step_would(bert_with_dropout):
    """Chunked and unchunked steps with dropout on: the replay draws the first pass's masks (finite,
    reproducible gradients), and the global RNG afterwards is the one the forward passes left."""
    encoder = InstructorEncoder.from_pretrained(bert_with_dropout, device="cpu")
    prepare_encoder(encoder)
    encoder.train()
    rows = _rows(5)

    def step(chunk):
        torch.manual_seed(11)
        encoder.zero_grad(set_to_none=True)
        loss = contrastive_step(encoder, InfoNCELoss(), rows, chunk_size=chunk)
        grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
        return loss, grads, torch.rand(3)

    first = step(4)
    second = step(4)
    assert first[0] == second[0]
    assert all(torch.equal(first[1][n], second[1][n]) for n in first[1])
    # chunks of len(rows) texts are the unchunked step's length-grouped passes: the same masks
    whole_loss, whole_grads, whole_next = step(None)
    single_loss, single_grads, single_next = step(len(rows))
    assert single_loss == pytest.approx(whole_loss, abs=1e-6)
    for name in whole_grads:
        torch.testing.assert_close(single_grads[name], whole_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    # after the replay the RNG is where the first (no-gradient) pass left it, like after a plain step
    assert torch.equal(single_next, whole_next)
