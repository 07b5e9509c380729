"""Small random checkpoints built on the fly (no download): the T5 path in the INSTRUCTOR layout,
a BERT in a plain sentence-transformers layout, and a plain Hugging Face folder.

Every builder writes with transformers / safetensors only, so the folders look exactly like what
users have on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file

WORDS = (
    "the a of and to in is for on with as by at from that this represent question document retrieval "
    "sentence claim abstract science cell protein gene cancer patient study result model data text "
    "wikipedia finance bank card payment money account transfer music guitar man woman plays dog cat "
    "runs fast slow red blue green big small new old water fire earth air city country river mountain"
).split()


def corpus_lines(n: int = 400) -> list[str]:
    """Deterministic varied sentences, also used as test inputs."""
    gen = torch.Generator().manual_seed(0)
    lines = []
    for i in range(n):
        length = 1 + int(torch.randint(0, 40, (1,), generator=gen))
        picks = torch.randint(0, len(WORDS), (length,), generator=gen).tolist()
        words = [WORDS[p] for p in picks]
        if i % 7 == 0:
            words[0] = words[0].capitalize()
        lines.append(" ".join(words) + ("." if i % 3 else ": "))
    return lines


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def build_t5_tokenizer(folder: Path):
    """A small T5-style tokenizer: Unigram over Metaspace, `</s>` appended, `<pad>` id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import T5TokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(corpus_lines() + [" ".join(WORDS)] * 5, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    fast = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0)
    fast.model_max_length = 512
    fast.save_pretrained(folder)
    return fast


def build_t5_instructor(
    folder: Path,
    *,
    layout: Literal["st", "instructor_embedding", "hub"] = "st",
    max_seq_length: int = 64,
    seed: int = 0,
    name_or_path: str | None = None,
    readme: str | None = None,
) -> Path:
    """A random T5 encoder saved in an INSTRUCTOR checkpoint layout.

    T5 encoder + Pooling(mean) + Dense(d_model -> 24, no bias, Identity) + Normalize, no prompts.

    Layouts:
        "st": sentence-transformers module types, ``include_prompt: false`` in the pooling config,
            Dense weights as safetensors (what sentence-transformers >= 3 saves for INSTRUCTOR).
        "instructor_embedding": modules.json names ``InstructorEmbedding`` classes (as some
            community copies do); the pooling config has no include_prompt key.
        "hub": exactly the hub's ``hkunlp/instructor-*`` layout: sentence-transformers module
            types, no include_prompt key, Dense weights as a ``pytorch_model.bin`` pickle, no
            prompts. Nothing in the module files says it is an INSTRUCTOR checkpoint.

    Args:
        folder: Where to write it.
        layout: One of the layouts above.
        max_seq_length: ``sentence_bert_config.json``'s token limit.
        seed: Torch seed for the random weights.
        name_or_path: Written as config.json's ``_name_or_path`` (e.g. "hkunlp/instructor-large").
        readme: Written as README.md (the model card), if given.
    """
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tokenizer = build_t5_tokenizer(folder)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        is_encoder_decoder=False,
        use_cache=False,
    )
    T5EncoderModel(config).save_pretrained(folder)
    if name_or_path is not None:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        _write_json(folder / "config.json", {"_name_or_path": name_or_path, **saved})
    if readme is not None:
        (folder / "README.md").write_text(readme, encoding="utf-8")
    transformer_type = (
        "InstructorEmbedding.INSTRUCTOR_Transformer"
        if layout == "instructor_embedding"
        else "sentence_transformers.models.Transformer"
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": transformer_type},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    _write_json(folder / "modules.json", modules)
    pooling = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    if layout == "st":
        pooling["include_prompt"] = False
    _write_json(folder / "1_Pooling" / "config.json", pooling)
    _write_json(
        folder / "2_Dense" / "config.json",
        {
            "in_features": 32,
            "out_features": 24,
            "bias": False,
            "activation_function": "torch.nn.modules.linear.Identity",
        },
    )
    weight = torch.randn(24, 32) / 32**0.5
    if layout == "st":
        save_file({"linear.weight": weight}, str(folder / "2_Dense" / "model.safetensors"))
    else:  # the published checkpoints ship a pickle; it must load with weights_only
        torch.save({"linear.weight": weight}, folder / "2_Dense" / "pytorch_model.bin")
    (folder / "3_Normalize").mkdir(exist_ok=True)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _write_json(folder / "config_sentence_transformers.json", {"__version__": {"sentence_transformers": "2.2.2"}})
    return folder


def build_bert_st(
    folder: Path,
    tokenizer_source: Path,
    *,
    prompts: dict[str, str] | None = None,
    pooling: str = "mean",
    max_seq_length: int = 48,
    seed: int = 0,
) -> Path:
    """A random 2-layer BERT (hidden 32) in a plain sentence-transformers layout (Pooling + Normalize).

    The WordPiece vocabulary comes from ``tokenizer_source`` (the offline all-MiniLM-L6-v2).
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": pooling == "max",
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    st_config: dict = {"__version__": {"sentence_transformers": "3.0.0"}}
    if prompts is not None:
        st_config["prompts"] = prompts
    _write_json(folder / "config_sentence_transformers.json", st_config)
    return folder


def build_plain_bert(folder: Path, tokenizer_source: Path, seed: int = 0) -> Path:
    """A random BERT saved as a plain Hugging Face folder (no sentence-transformers files)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
