"""Tiny random models in the layouts today's instruction embedders ship, saved by sentence-transformers.

Each builder makes a small random Hugging Face model of the real architecture (BERT, XLM-R,
ModernBERT, Qwen3, Mistral, Gemma3), wraps it in the sentence-transformers modules the published
model uses (pooling mode, Dense layers and their activations, LayerNorm, Normalize), with the
published model's kind of prompts, and saves it with sentence-transformers itself: the folders are
exactly what ``SentenceTransformer.save`` writes. The WordPiece vocabulary of the offline
all-MiniLM-L6-v2 serves every model (the parity tests compare two loaders on the same tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

HIDDEN = 32


@dataclass(frozen=True)
class Layout:
    """One published model's shape, small.

    Attributes:
        name: The model it stands for.
        config: ``(vocab_size) -> transformers config`` of the tiny model.
        pooling: sentence-transformers pooling mode.
        post: Modules after pooling: ``("dense", out, activation)`` or ``("layernorm",)``.
        normalize: Whether the pipeline ends in Normalize.
        prompts: The named prompts the published folder ships.
        default_prompt_name: Its default prompt name, if any.
        padding_side: The tokenizer's padding side.
    """

    name: str
    config: Callable[[int], object]
    pooling: str
    post: tuple[tuple, ...] = ()
    normalize: bool = True
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    padding_side: str = "right"


def _bert(vocab: int) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip


def _xlmr(vocab: int) -> object:
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=130, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0,
    )  # fmt: skip


def _modernbert(vocab: int) -> object:
    from transformers import ModernBertConfig

    return ModernBertConfig(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, pad_token_id=0, global_attn_every_n_layers=2, local_attention=16,
    )  # fmt: skip


def _qwen3(vocab: int) -> object:
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
    )  # fmt: skip


def _mistral(vocab: int) -> object:
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
    )  # fmt: skip


def _gemma3(vocab: int) -> object:
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, intermediate_size=64, max_position_embeddings=128, pad_token_id=0, sliding_window=16,
        use_bidirectional_attention=True,
    )  # fmt: skip


GEMMA_PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "BitextMining": "task: search result | query: ",
    "Clustering": "task: clustering | query: ",
    "Classification": "task: classification | query: ",
    "InstructionRetrieval": "task: code retrieval | query: ",
    "MultilabelClassification": "task: classification | query: ",
    "PairClassification": "task: sentence similarity | query: ",
    "Reranking": "task: search result | query: ",
    "Retrieval": "task: search result | query: ",
    "Retrieval-query": "task: search result | query: ",
    "Retrieval-document": "title: none | text: ",
    "STS": "task: sentence similarity | query: ",
    "Summarization": "task: summarization | query: ",
}
QWEN3_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
E5_MISTRAL_PROMPTS = {
    "web_search_query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
    "sts_query": "Instruct: Retrieve semantically similar text.\nQuery: ",
    "summarization_query": "Instruct: Given a news summary, retrieve other semantically similar summaries\nQuery: ",
    "bitext_query": "Instruct: Retrieve parallel sentences.\nQuery: ",
}

LAYOUTS: dict[str, Layout] = {
    "embeddinggemma": Layout(
        "google/embeddinggemma-300m",
        _gemma3,
        "mean",
        post=(("dense", 48, "Identity"), ("dense", HIDDEN, "Identity")),
        prompts=GEMMA_PROMPTS,
    ),  # fmt: skip
    "e5-mistral": Layout(
        "intfloat/e5-mistral-7b-instruct", _mistral, "lasttoken", prompts=E5_MISTRAL_PROMPTS, padding_side="left"
    ),
    "qwen3": Layout(
        "Qwen/Qwen3-Embedding-0.6B",
        _qwen3,
        "lasttoken",
        prompts={
            "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
            "document": "",
        },
        padding_side="left",
    ),  # fmt: skip
    "xlmr-mean": Layout(
        "intfloat/multilingual-e5-large-instruct", _xlmr, "mean", prompts={"query": "query: ", "passage": "passage: "}
    ),
    "xlmr-cls": Layout("BAAI/bge-m3", _xlmr, "cls"),
    "bert-cls-gelu-layernorm": Layout(
        "BERT cls + GELU Dense + LayerNorm",
        _bert,
        "cls",
        post=(("dense", 24, "GELU"), ("layernorm",)),
        prompts={"query": "Represent this sentence for searching relevant passages: "},
    ),  # fmt: skip
    "modernbert": Layout(
        "Alibaba-NLP/gte-modernbert-base",
        _modernbert,
        "cls",
        prompts={"query": "search_query: ", "document": "search_document: ", "classification": "classification: "},
        default_prompt_name="classification",
    ),  # fmt: skip
    "weightedmean-decoder": Layout("a weighted-mean decoder (SGPT-style)", _qwen3, "weightedmean", normalize=False),
    "mean-sqrt-len": Layout("mean_sqrt_len_tokens pooling", _bert, "mean_sqrt_len_tokens", normalize=False),
}


def build(name: str, folder: Path, tokenizer_source: Path, *, seed: int = 0) -> Path:
    """Build the tiny model for ``LAYOUTS[name]`` and save it with sentence-transformers into ``folder``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, LayerNorm, Normalize, Pooling, Transformer
    from transformers import AutoModel, AutoTokenizer

    layout = LAYOUTS[name]
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    tokenizer.padding_side = layout.padding_side
    hf = folder.parent / f"{folder.name}-hf"
    AutoModel.from_config(layout.config(tokenizer.vocab_size)).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    modules: list = [Transformer(str(hf), max_seq_length=64)]
    modules.append(Pooling(HIDDEN, pooling_mode=layout.pooling))
    width = HIDDEN
    for step in layout.post:
        if step[0] == "dense":
            activation = getattr(torch.nn, step[2])()
            modules.append(Dense(width, step[1], activation_function=activation))
            torch.nn.init.normal_(modules[-1].linear.weight, std=0.3)
            width = step[1]
        else:
            modules.append(LayerNorm(width))
            torch.nn.init.normal_(modules[-1].norm.weight, mean=1.0, std=0.2)
            torch.nn.init.normal_(modules[-1].norm.bias, std=0.2)
    if layout.normalize:
        modules.append(Normalize())
    model = SentenceTransformer(
        modules=modules, prompts=dict(layout.prompts), default_prompt_name=layout.default_prompt_name, device="cpu"
    )
    model.save(str(folder))
    return folder
