"""Pooling that leaves the instruction out, on a byte-level BPE tokenizer that adds no special tokens
(GPT-2 style): an empty text, a prompt ending in a space, a text that leaves no token to pool.

A BPE prompt ending in a space tokenizes alone to ``[..., ":", "Ġ"]``, but followed by a text the
space joins the text's first word (``[..., ":", "Ġcat"]``): counting the prompt alone left that
word out of pooling too (sentence-transformers 6.3 counts so), and a one-word text then pooled
nothing, NaN with max pooling. Here the instruction's tokens are counted in each item's own tokens,
and an item with no token to pool is a bad input naming its index, never a raw RuntimeError or NaN.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_core import InstructorEncoder
from instructor_core.errors import InputError
from tests.tiny_models import corpus_lines

st = pytest.importorskip("sentence_transformers")

PROMPT = "Represent the document for retrieval: "


def _build(root: Path, pooling: str) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([*corpus_lines(400), PROMPT], vocab_size=600, special_tokens=["<pad>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, pad_token="<pad>")  # adds no special tokens
    hf = root / f"hf-{pooling}"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    modules = [Transformer(str(hf), max_seq_length=64), Pooling(32, pooling_mode=pooling, include_prompt=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SentenceTransformer(modules=modules, device="cpu").save(str(root / pooling))
    return root / pooling


@pytest.fixture(scope="module")
def bpe_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bpe")
    return {pooling: _build(root, pooling) for pooling in ("max", "mean")}


@pytest.fixture(scope="module")
def bpe_max(bpe_folders) -> InstructorEncoder:
    return InstructorEncoder.from_pretrained(bpe_folders["max"], device="cpu")


def _hidden(encoder: InstructorEncoder, text: str) -> torch.Tensor:
    ids = encoder.tokenizer(text)["input_ids"]
    with torch.inference_mode():
        return encoder.transformer(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids)))[0][0]


def test_the_tokenizer_splits_a_trailing_space_off_alone_and_joins_it_to_a_following_word(bpe_max):
    tokens = bpe_max.tokenizer.tokenize
    assert tokens(PROMPT)[-1] == "Ġ" and tokens(PROMPT + "cat")[-1] == "Ġcat"
    assert bpe_max.tokenizer("")["input_ids"] == []  # no special tokens: an empty text is no token at all
    assert not bpe_max.spec.include_prompt and bpe_max.spec.pooling == "max"


def test_a_prompt_ending_in_a_space_leaves_out_only_its_own_tokens(bpe_max):
    """A one-word text pools its word (it pooled nothing: NaN), and a longer one all its words."""
    for text in ("cat", "cat river money"):
        got = bpe_max.encode_documents([text], PROMPT)
        assert np.isfinite(got).all()
        prompt_tokens = len(bpe_max.tokenizer.tokenize(PROMPT)) - 1  # without the lone "Ġ"
        hidden = _hidden(bpe_max, PROMPT + text)
        expected = torch.nn.functional.normalize(hidden[prompt_tokens:].max(dim=0).values, dim=-1).numpy()
        np.testing.assert_allclose(got[0], expected, atol=1e-6)


def test_an_instruction_without_a_trailing_space_is_counted_as_before(bpe_folders):
    """Where the prompt's tokens are a prefix of the item's (no trailing space), the count is the
    prompt's own, as sentence-transformers counts: the vectors equal its."""
    ours = InstructorEncoder.from_pretrained(bpe_folders["mean"], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = st.SentenceTransformer(str(bpe_folders["mean"]), device="cpu")
    texts = corpus_lines(20)
    prompt = PROMPT.rstrip()
    expected = theirs.encode([" " + t for t in texts], prompt=prompt, normalize_embeddings=True)
    assert np.abs(ours.encode_documents([" " + t for t in texts], prompt) - expected).max() <= 1e-5


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_an_empty_text_is_a_bad_input_naming_its_index(bpe_folders, pooling):
    encoder = InstructorEncoder.from_pretrained(bpe_folders[pooling], device="cpu")
    for texts, instruction in ((["cat river", "money", ""], ""), ([""], ""), (["cat", ""], PROMPT)):
        with pytest.raises(InputError) as caught:
            encoder.encode_documents(texts, instruction)
        message = str(caught.value)
        assert "\n" not in message and f"item {len(texts) - 1}" in message and "no token" in message, message
