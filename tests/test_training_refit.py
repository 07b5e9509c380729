"""GradCache, hard-negative mining and the trainer (refit, save/reload, resume) on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from instructor_core import Instructions, InstructorEncoder
from instructor_core.training import (
    InfoNCELoss,
    TrainConfig,
    TrainingRow,
    contrastive_step,
    mine_hard_negatives,
    prepare_encoder,
    task_batches,
    train,
)
from instructor_core.training import trainer as trainer_module
from tests import tiny_models

Q = "Represent the question for retrieval: "
D = "Represent the passage: "


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread: conftest


def _rows(n: int = 24) -> list[TrainingRow]:
    lines = tiny_models.corpus_lines(3 * n + 10)
    rows = []
    for i in range(n):
        task = "a" if i % 2 else "b"
        rows.append(TrainingRow((Q, lines[3 * i]), (D, lines[3 * i + 1]), ((D, lines[3 * i + 2]),), task))
    return rows


@pytest.fixture
def fresh_t5(tmp_path):
    """A tiny T5 built for this test alone (the session fixture is shared and must stay untouched)."""
    return tiny_models.build_t5_instructor(tmp_path / "t5", seed=1)


@pytest.fixture
def fresh_bert_with_dropout(tmp_path, minilm_path):
    """A tiny BERT with dropout on, so the RNG has to be restored for exact resumes and GradCache."""
    folder = tiny_models.build_bert_st(tmp_path / "bert", minilm_path, seed=2)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _grads(encoder) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in encoder.named_parameters() if p.grad is not None}


def test_gradcache_gradient_equals_plain_gradient(fresh_bert_with_dropout):
    encoder = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu")
    prepare_encoder(encoder)
    encoder.eval()  # no dropout: one pass over the whole batch is the reference
    rows = _rows(6)
    loss_fn = InfoNCELoss(temperature=0.05, symmetric=True)
    results = {}
    for chunk in (None, 4):
        encoder.zero_grad(set_to_none=True)
        loss = contrastive_step(encoder, loss_fn, rows, chunk_size=chunk)
        results[chunk] = (loss, _grads(encoder))
    plain_loss, plain = results[None]
    cached_loss, cached = results[4]
    assert cached_loss == pytest.approx(plain_loss, abs=1e-5)
    assert plain.keys() == cached.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], atol=1e-5, rtol=1e-4, msg=name)
    assert sum(float(g.abs().sum()) for g in plain.values()) > 0


def test_gradcache_with_dropout_matches_a_manual_full_graph_pass(fresh_bert_with_dropout):
    """With dropout on, the cached second pass draws the same masks as the first."""
    encoder = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu")
    prepare_encoder(encoder)
    encoder.train()
    rows = _rows(5)
    loss_fn = InfoNCELoss()
    pairs = [r.query for r in rows] + [r.pos for r in rows] + [n for r in rows for n in r.neg]
    ids = encoder.tokenize(pairs)
    order = sorted(range(len(pairs)), key=lambda i: -len(ids[i]))
    chunks = [order[s : s + 4] for s in range(0, len(order), 4)]
    torch.manual_seed(7)
    parts = []
    for chunk in chunks:  # the same chunks, the same RNG stream, one autograd graph
        out = encoder.forward(encoder.collate([ids[i] for i in chunk], [pairs[i][0] for i in chunk]))
        parts.append((chunk, out))
    vectors = torch.zeros(len(pairs), encoder.dimension).index_put(
        (torch.tensor(order),), torch.cat([o for _, o in parts])
    )
    reference = loss_fn(vectors[:5], vectors[5:10], vectors[10:])
    encoder.zero_grad(set_to_none=True)
    reference.backward()
    expected = _grads(encoder)
    encoder.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    loss = contrastive_step(encoder, loss_fn, rows, chunk_size=4)
    assert loss == pytest.approx(reference.item(), abs=1e-6)
    for name, grad in _grads(encoder).items():
        torch.testing.assert_close(grad, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_mining_takes_the_rank_window_and_skips_positives(fresh_t5):
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    lines = tiny_models.corpus_lines(60)
    rows = [TrainingRow((Q, lines[0]), (D, lines[1])), TrainingRow((Q, lines[0]), (D, lines[2]))]
    corpus = lines[1:50]
    mined = mine_hard_negatives(encoder, rows, corpus, document_instruction=D, start=0, end=10, num_negatives=3)
    ranking = np.argsort(-(encoder.encode([(Q, lines[0])]) @ encoder.encode([(D, c) for c in corpus]).T)[0])
    expected = [corpus[i] for i in ranking[:10] if corpus[i] not in (lines[1], lines[2])][:3]
    for row in mined:
        assert [n[1] for n in row.neg] == expected  # both rows share the query: neither positive is taken
        assert all(n[0] == D for n in row.neg)
    skipped = mine_hard_negatives(encoder, rows, corpus, document_instruction=D, start=5, end=8, num_negatives=5)
    window = [corpus[i] for i in ranking[5:8] if corpus[i] not in (lines[1], lines[2])]
    assert [n[1] for n in skipped[0].neg] == window


def test_refit_lowers_loss_and_saved_model_reloads_identically(fresh_t5, tmp_path):
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    rows = _rows(24)
    loss_fn = InfoNCELoss()
    with torch.no_grad():
        before = contrastive_step_value(encoder, loss_fn, rows)
    instructions = Instructions(query=Q, document=D)
    config = TrainConfig(
        output_dir=tmp_path / "run",
        epochs=6,
        batch_size=6,
        learning_rate=3e-3,
        seed=0,
        show_progress=False,
        instructions=instructions,
        chunk_size=5,
    )
    result = train(encoder, rows, config)
    after = contrastive_step_value(encoder, loss_fn, rows)
    assert result.steps == 6 * 4 and len(result.losses) == result.steps
    assert after < 0.7 * before, (before, after)
    texts = [r.query[1] for r in rows[:5]]
    in_memory = encoder.encode_queries(texts)
    reloaded = InstructorEncoder.from_pretrained(result.model_path, device="cpu")
    assert reloaded.instructions == instructions and reloaded.spec.include_prompt is False
    np.testing.assert_allclose(reloaded.encode_queries(texts), in_memory, atol=1e-6)
    pooling = json.loads((result.model_path / "1_Pooling" / "config.json").read_text())
    assert pooling["include_prompt"] is False


def contrastive_step_value(encoder, loss_fn, rows) -> float:
    """The mean loss over the rows' batches, in eval mode, without touching any gradient."""
    encoder.eval()
    with torch.no_grad():
        values = []
        for start in range(0, len(rows), 6):
            batch = rows[start : start + 6]
            pairs = [r.query for r in batch] + [r.pos for r in batch] + [n for r in batch for n in r.neg]
            vectors = encoder.forward(encoder.collate(encoder.tokenize(pairs), [p[0] for p in pairs]))
            values.append(loss_fn(vectors[:6], vectors[6:12], vectors[12:]).item())
    return float(np.mean(values))


def test_minilm_refit_folder_loads_in_sentence_transformers(minilm_path, tmp_path):
    """include_prompt must be switched off for a MiniLM refit, and sentence-transformers agrees."""
    from sentence_transformers import SentenceTransformer

    encoder = InstructorEncoder.from_pretrained(minilm_path, device="cpu", max_length=32)
    assert encoder.spec.include_prompt is True
    rows = _rows(4)
    config = TrainConfig(
        output_dir=tmp_path / "mini",
        epochs=1,
        batch_size=4,
        show_progress=False,
        instructions=Instructions(query=Q, document=D),
    )
    result = train(encoder, rows, config)
    assert encoder.spec.include_prompt is False
    texts = ["the cell gene protein", "a bank card payment"]
    ours = encoder.encode_queries(texts)
    theirs = SentenceTransformer(str(result.model_path), device="cpu").encode(texts, prompt_name="query")
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


class _Kill(RuntimeError):
    pass


def test_resume_after_kill_ends_bit_identical(fresh_bert_with_dropout, tmp_path):
    rows = _rows(20)

    def config(folder):
        return TrainConfig(
            output_dir=folder,
            epochs=2,
            batch_size=4,
            learning_rate=1e-3,
            seed=5,
            checkpoint_every=3,
            show_progress=False,
            chunk_size=6,
        )

    straight = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu")
    expected = train(straight, rows, config(tmp_path / "straight"))
    assert expected.steps == 12  # 2 tasks x (4 + 4 + 2 rows) x 2 epochs

    def kill_at_8(step, _loss):
        if step == 8:  # the last checkpoint is step 6 (epoch end): steps 7-8 are lost and replayed
            raise _Kill

    killed = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu")
    with pytest.raises(_Kill):
        train(killed, rows, config(tmp_path / "killed"), on_step=kill_at_8)
    resumed_encoder = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu")
    resumed = train(resumed_encoder, rows, config(tmp_path / "killed"), resume=True)
    assert resumed.steps == expected.steps and resumed.losses == expected.losses
    want = straight.state_dict()
    got = resumed_encoder.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    # and the run actually trained: weights moved away from the start
    start = InstructorEncoder.from_pretrained(fresh_bert_with_dropout, device="cpu").state_dict()
    assert any(not torch.equal(start[k], got[k]) for k in start)


def test_max_time_stops_early_and_still_saves(fresh_t5, tmp_path):
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    config = TrainConfig(output_dir=tmp_path / "t", epochs=50, batch_size=4, max_time_s=0.0, show_progress=False)
    result = train(encoder, _rows(12), config)
    assert result.stopped_early and result.steps == 1
    assert (result.model_path / "modules.json").is_file() and (tmp_path / "t" / "checkpoint.pt").is_file()


class StepClock:
    """A fake clock that moves only when a training step ends (each step takes ``tick`` seconds)
    or when a test says so; the trainer reads it through ``train(..., clock=...)``."""

    def __init__(self, monkeypatch, tick: float) -> None:
        self.now = 0.0
        real_step = trainer_module.contrastive_step

        def timed_step(*args, **kwargs):
            loss = real_step(*args, **kwargs)
            self.now += tick
            return loss

        monkeypatch.setattr(trainer_module, "contrastive_step", timed_step)

    def __call__(self) -> float:
        return self.now


def _steps_per_epoch(rows, batch_size: int) -> int:
    return len(task_batches(rows, batch_size, seed=TrainConfig.seed, epoch=0))


def test_time_budget_stops_at_the_first_step_that_reaches_it(fresh_t5, tmp_path, monkeypatch):
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    config = TrainConfig(output_dir=tmp_path / "t", epochs=50, batch_size=4, max_time_s=3.5, show_progress=False)
    clock = StepClock(monkeypatch, tick=1.0)
    result = train(encoder, _rows(12), config, clock=clock)
    assert result.stopped_early and result.steps == 4 and len(result.losses) == 4  # 4 s >= 3.5 s, 3 s was not
    assert result.seconds == 4.0
    assert (result.model_path / "modules.json").is_file() and (tmp_path / "t" / "checkpoint.pt").is_file()


def test_epoch_end_callback_time_is_not_counted_against_the_budget(fresh_t5, tmp_path, monkeypatch):
    rows = _rows(12)
    per_epoch = _steps_per_epoch(rows, 4)
    assert per_epoch >= 3
    clock = StepClock(monkeypatch, tick=1.0)
    evaluated = []

    def evaluate(epoch, model):  # an evaluation far longer than the whole budget
        clock.now += 100.0
        evaluated.append(epoch)
        return {"epoch": epoch}

    # Budget: one epoch and 1.5 steps. Counting the 100 s evaluation would stop right after epoch 1's
    # last step (or, counted from the next step, at step per_epoch + 1).
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    config = TrainConfig(
        output_dir=tmp_path / "t", epochs=2, batch_size=4, max_time_s=per_epoch + 1.5, show_progress=False
    )
    result = train(encoder, rows, config, on_epoch_end=evaluate, clock=clock)
    assert evaluated == [1] and result.epoch_metrics == [{"epoch": 1}]
    assert result.stopped_early and result.steps == per_epoch + 2
    assert result.seconds == per_epoch + 2  # training time only

    # A budget the training alone stays within: both epochs run, both evaluations happen.
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    config = TrainConfig(
        output_dir=tmp_path / "u", epochs=2, batch_size=4, max_time_s=2 * per_epoch + 0.5, show_progress=False
    )
    clock.now, evaluated[:] = 0.0, []
    result = train(encoder, rows, config, on_epoch_end=evaluate, clock=clock)
    assert evaluated == [1, 2] and not result.stopped_early and result.steps == 2 * per_epoch
    assert result.seconds == 2 * per_epoch


def test_bf16_autocast_step_is_close_to_float32(fresh_t5):
    encoder = InstructorEncoder.from_pretrained(fresh_t5, device="cpu")
    rows = _rows(6)
    values = {}
    for bf16 in (False, True):
        encoder.zero_grad(set_to_none=True)
        values[bf16] = contrastive_step(encoder, InfoNCELoss(), rows, chunk_size=4, bf16=bf16)
        assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)
    assert values[True] == pytest.approx(values[False], rel=0.05)
    assert values[True] != values[False]  # autocast really ran in bfloat16
