"""The speed paths change speed, not answers: batching, packed kernels and the ONNX backends.

No timing here (CI times nothing); each test checks an order, a budget or a numeric bound.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from instructor_core import InstructorEncoder
from instructor_core.model.backends.onednn import PackedLinear, onednn_available, pack_linears
from instructor_core.model.batching import pad_right, padding_waste, token_budget_batches
from tests.tiny_models import corpus_lines

INSTRUCTIONS = [
    "Represent the question for retrieval: ",
    "Represent the passage: ",
    "Represent the Science title: ",
    "",
]


def mixed_pairs(n: int) -> list[tuple[str, str]]:
    lines = corpus_lines(n)
    lines[2] = "word " * 300  # truncated to max_length
    return [(INSTRUCTIONS[k % len(INSTRUCTIONS)], text) for k, text in enumerate(lines)]


# ---------------------------------------------------------------- batching
def test_token_budget_batches_respect_budget_and_cover_every_item_once():
    rng = random.Random(7)
    lengths = [rng.randint(1, 300) for _ in range(500)] + [900]  # one item over the budget
    batches = token_budget_batches(lengths, max_tokens=1024)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= 1024 or len(batch) == 1
    assert [len(b) for b in batches if lengths[b[0]] == 900] == [1]
    # longest first, and stable for ties
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    ties = [i for i in flat if lengths[i] == lengths[flat[10]]]
    assert ties == sorted(ties)


def test_token_budget_batches_put_many_short_items_in_one_pass():
    batches = token_budget_batches([10] * 300, max_tokens=32 * 256)
    assert [len(b) for b in batches] == [300]
    assert [len(b) for b in token_budget_batches([256] * 64, max_tokens=32 * 256)] == [32, 32]


def test_sorted_budget_batches_waste_less_padding_than_fixed_count_batches():
    rng = random.Random(3)
    lengths = [rng.randint(5, 256) for _ in range(400)]
    fixed = [list(range(s, min(s + 32, 400))) for s in range(0, 400, 32)]
    budget = token_budget_batches(lengths, max_tokens=32 * 256)
    # unsorted fixed-count batches pad about half of what they compute; sorted budget batches far less
    assert padding_waste(lengths, budget) < 0.15 < 0.4 < padding_waste(lengths, fixed)


def test_min_rows_keeps_large_batches_of_short_texts_nearly_unpadded():
    rng = random.Random(5)
    lengths = [rng.randint(8, 60) for _ in range(300)]
    loose = token_budget_batches(lengths, max_tokens=32 * 256)
    tight = token_budget_batches(lengths, max_tokens=32 * 256, min_rows=32)
    assert padding_waste(lengths, tight) < 0.5 * padding_waste(lengths, loose)
    for batch in tight:  # past 32 rows, every item is within 10% of the batch's width
        width = lengths[batch[0]]
        assert all(lengths[i] >= 0.9 * width for i in batch[32:])


def test_token_budget_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_tokens"):
        token_budget_batches([3], max_tokens=0)


def test_pad_right_pads_and_masks():
    ids, mask = pad_right([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert ids.dtype == torch.long and mask.dtype == torch.long


def test_output_order_is_input_order_whatever_the_batching(tiny_bert_encoder):
    pairs = mixed_pairs(70)
    together = tiny_bert_encoder.encode(pairs, batch_size=4)
    one_by_one = np.concatenate([tiny_bert_encoder.encode([p], batch_size=1) for p in pairs])
    assert np.abs(together - one_by_one).max() <= 1e-5
    shuffled = list(range(len(pairs)))
    random.Random(1).shuffle(shuffled)
    again = tiny_bert_encoder.encode([pairs[i] for i in shuffled], batch_size=16)
    assert np.abs(again - together[shuffled]).max() <= 1e-5


# ---------------------------------------------------------------- oneDNN-packed Linear
needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch build lacks oneDNN packed linear")


@needs_onednn
@pytest.mark.parametrize("gelu", [False, True])
def test_packed_linear_equals_linear_and_trains_like_it(gelu):
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 80)
    packed = PackedLinear(plain, gelu=gelu)
    assert packed.weight is plain.weight  # shared, so the state dict and optimizers see one tensor
    x = torch.randn(3, 7, 48)
    expected = torch.nn.functional.gelu(plain(x)) if gelu else plain(x)
    with torch.inference_mode():
        assert torch.allclose(packed(x), expected, atol=1e-5)
    # with gradients on it is an ordinary differentiable Linear
    packed(x).sum().backward()
    assert plain.weight.grad is not None and plain.weight.grad.abs().sum() > 0
    # an in-place update is seen by the next inference call (no stale packed copy)
    with torch.no_grad():
        plain.weight.mul_(0.5)
    with torch.inference_mode():
        updated = torch.nn.functional.gelu(plain(x)) if gelu else plain(x)
        assert torch.allclose(packed(x), updated, atol=1e-5)


@needs_onednn
def test_default_cpu_encoder_uses_packed_layers_and_stays_differentiable(tiny_bert_path):
    encoder = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")
    packed = [m for m in encoder.transformer.modules() if isinstance(m, PackedLinear)]
    assert packed and any(m.gelu for m in packed)
    assert pack_linears(torch.nn.Sequential(torch.nn.ReLU())) == 0
    keys = set(encoder.state_dict())
    assert not any("_packed" in k for k in keys)
    batch = encoder.collate(encoder.tokenize(mixed_pairs(6)), [i for i, _ in mixed_pairs(6)])
    encoder.train()
    encoder(batch).sum().backward()
    assert packed[0].weight.grad is not None
    encoder.zero_grad()
    encoder.eval()


# ---------------------------------------------------------------- ONNX backends


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason='the ONNX backends need the "onnx" extra')
    pytest.importorskip("onnxscript", reason='the ONNX backends need the "onnx" extra')
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.mark.slow
def test_onnx_backends_match_torch_with_mixed_instructions(tiny_bert_path, tiny_bert_encoder, onnx_cache):
    before = sorted(p.name for p in tiny_bert_path.rglob("*"))
    pairs = mixed_pairs(40)
    reference = tiny_bert_encoder.encode(pairs)
    fp32 = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=onnx_cache)
    assert np.abs(fp32.encode(pairs, batch_size=8) - reference).max() <= 1e-5
    # the export switched attention to eager for the graph, and put the torch model back as it was
    assert fp32.transformer.config._attn_implementation == tiny_bert_encoder.transformer.config._attn_implementation
    int8 = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx-int8", backend_cache_dir=onnx_cache)
    quantized = int8.encode(pairs, batch_size=8)
    cosines = (quantized * reference).sum(1)
    assert quantized.dtype == np.float32 and np.allclose(np.linalg.norm(quantized, axis=1), 1, atol=1e-5)
    assert cosines.min() >= 0.97, cosines.min()
    # the export went to the cache, not next to the model, and a second load reuses it
    assert sorted(p.name for p in tiny_bert_path.rglob("*")) == before
    exports = sorted(onnx_cache.rglob("*.onnx"))
    assert [p.name for p in exports] == ["model.onnx", "model_int8.onnx"]
    stamp = exports[0].stat().st_mtime_ns
    InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=onnx_cache)
    assert exports[0].stat().st_mtime_ns == stamp


def test_onnx_export_falls_back_to_dynamo_when_torchscript_fails(
    tiny_bert_path, tiny_bert_encoder, tmp_path, monkeypatch
):
    pytest.importorskip("onnxscript", reason='the ONNX backends need the "onnx" extra')
    from instructor_core.model.backends import onnxrt

    def broken(*args, **kwargs):
        raise RuntimeError("TorchScript exporter removed")

    monkeypatch.setattr(onnxrt, "_export_torchscript", broken)
    pairs = mixed_pairs(12)
    fp32 = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=tmp_path)
    assert np.abs(fp32.encode(pairs) - tiny_bert_encoder.encode(pairs)).max() <= 1e-5


@pytest.mark.slow
def test_onnx_backend_on_t5_instructor_layout(tiny_t5_path, tiny_t5_encoder, onnx_cache):
    pairs = mixed_pairs(30)
    fp32 = InstructorEncoder.from_pretrained(tiny_t5_path, backend="onnx", backend_cache_dir=onnx_cache)
    assert np.abs(fp32.encode(pairs) - tiny_t5_encoder.encode(pairs)).max() <= 1e-5


def test_backend_arguments_are_checked(tiny_bert_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="tensorrt")
    with pytest.raises(ValueError, match="float32"):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx-int8", dtype="bfloat16")
    with pytest.raises(ValueError, match="CPU"):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", device="cuda")


_TOKENIZER_PROBES = [
    "",
    " ",
    "a",
    "Aspirin irreversibly inhibits COX-1.",
    "[CLS] [SEP] [PAD] [MASK] </s> <pad> special strings inside the text",
    "Ünïcödé, emoji 🧬, CJK 蛋白质, tabs\tand\nnewlines",
    "word " * 400,  # past max_length: truncated
    "x" * 3000,
]


@pytest.mark.parametrize("fixture", ["minilm_encoder", "tiny_t5_encoder"])
def test_tokenize_equals_the_tokenizers_own_call(fixture, request):
    """The encoder calls the Rust tokenizer directly (less per-call overhead for one query); the ids
    must be those of the tokenizer's own ``__call__`` with truncation, for every probe and instruction."""
    encoder = request.getfixturevalue(fixture)
    for instruction in ("", "Represent the scientific claim: "):
        pairs = [(instruction, text) for text in _TOKENIZER_PROBES]
        expected = encoder.tokenizer(
            [instruction + text for text in _TOKENIZER_PROBES],
            add_special_tokens=True,
            truncation=True,
            max_length=encoder.max_length,
        )["input_ids"]
        got = encoder.tokenize(pairs)
        assert got == expected
        assert max(len(row) for row in got) == encoder.max_length  # the long probes were truncated
    # the tokenizer's own call afterwards still behaves as the user left it (no padding forced on)
    plain = encoder.tokenizer(["a", "a b c"])["input_ids"]
    assert [len(row) for row in plain] == [
        len(encoder.tokenizer("a")["input_ids"]),
        len(encoder.tokenizer("a b c")["input_ids"]),
    ]


@pytest.mark.parametrize(("value", "expected"), [(None, "1"), ("1", "1"), ("0", "0"), ("off", "0")])
def test_ort_spinning_follows_the_setting(tiny_bert_path, onnx_cache, monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("INSTRUCTOR_ORT_SPINNING", raising=False)
    else:
        monkeypatch.setenv("INSTRUCTOR_ORT_SPINNING", value)
    encoder = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=onnx_cache)
    options = encoder._runtime.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected


def test_ort_spinning_rejects_a_value_it_cannot_read(tiny_bert_path, onnx_cache, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_ORT_SPINNING", "sometimes")
    with pytest.raises(ValueError, match="INSTRUCTOR_ORT_SPINNING must be 1 or 0, got 'sometimes'"):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=onnx_cache)
