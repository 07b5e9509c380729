"""Today's instruction embedders, each as a tiny random model in its real sentence-transformers layout:
named prompts, Matryoshka truncation, quantized outputs, the pooling modes and modules they use, and
left padding give the same vectors as sentence-transformers 6 (the oracle), by the same names."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from instructor_core import Instructions, InstructorEncoder, LoadOptions, ModelFolderError
from instructor_core.model.prompts import UnknownPromptError
from instructor_core.model.quantization import PRECISIONS, quantize_embeddings
from tests import modern_models
from tests.tiny_models import corpus_lines

st = pytest.importorskip("sentence_transformers")

TEXTS = [line for line in corpus_lines(40)[::3]] + ["a", "the river runs fast and the city is old " * 3]
ATOL = 1e-5


@pytest.fixture(scope="module")
def folders(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("modern")
    return {name: modern_models.build(name, root / name, minilm_path) for name in modern_models.LAYOUTS}


@pytest.fixture(scope="module")
def pair(folders):
    """``(ours, sentence-transformers')`` for a layout, loaded once each."""
    cache: dict[str, tuple] = {}

    def load(name: str):
        if name not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference = st.SentenceTransformer(str(folders[name]), device="cpu")
            cache[name] = (InstructorEncoder.from_pretrained(folders[name], device="cpu"), reference)
        return cache[name]

    return load


def close(ours, theirs, atol=ATOL):
    ours, theirs = np.asarray(ours, dtype=np.float32), np.asarray(theirs, dtype=np.float32)
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max())


LAYOUTS = list(modern_models.LAYOUTS)


@pytest.mark.parametrize("name", LAYOUTS)
def test_queries_and_documents_equal_sentence_transformers(pair, name):
    ours, theirs = pair(name)
    normalize = modern_models.LAYOUTS[name].normalize
    assert close(ours.encode_queries(TEXTS, normalize=normalize), theirs.encode_query(TEXTS)) <= ATOL
    assert close(ours.encode_documents(TEXTS, normalize=normalize), theirs.encode_document(TEXTS)) <= ATOL


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_named_prompt_equals_sentence_transformers(pair, name):
    ours, theirs = pair(name)
    normalize = modern_models.LAYOUTS[name].normalize
    # every name's text, ``query`` and ``document`` included (the slots in effect: what encode_query and
    # encode_document prepend, since sentence-transformers saves both names in the folder)
    assert ours.prompts == theirs.prompts
    assert ours.prompts["query"] == ours.instructions.query and ours.prompts["document"] == ours.instructions.document
    for prompt_name in theirs.prompts:
        mine = ours.encode(TEXTS, prompt_name=prompt_name, normalize=normalize)
        assert close(mine, theirs.encode(TEXTS, prompt_name=prompt_name)) <= ATOL, prompt_name
    # a plain encode uses the default prompt name where the folder has one (gte-modernbert-style here)
    assert close(ours.encode(TEXTS, normalize=normalize), theirs.encode(TEXTS)) <= ATOL


def test_named_prompts_are_read_from_the_folder(pair):
    gemma, _ = pair("embeddinggemma")
    assert len(gemma.prompts) == 14 and gemma.prompts["STS"] == "task: sentence similarity | query: "
    e5, _ = pair("e5-mistral")
    # e5-mistral ships only task-named prompts: both slots are empty, the names pick the instruction
    assert e5.instructions.query == "" and "web_search_query" in e5.prompts
    modernbert, _ = pair("modernbert")
    assert modernbert.default_prompt_name == "classification"


def test_prompt_name_on_the_slots(pair):
    ours, theirs = pair("e5-mistral")
    mine = ours.encode_queries(TEXTS, prompt_name="web_search_query")
    assert close(mine, theirs.encode_query(TEXTS, prompt_name="web_search_query")) <= ATOL
    mine = ours.encode_documents(TEXTS, prompt_name="sts_query")
    assert close(mine, theirs.encode_document(TEXTS, prompt_name="sts_query")) <= ATOL


def test_an_unknown_prompt_name_lists_the_known_ones(pair):
    ours, _ = pair("e5-mistral")
    with pytest.raises(UnknownPromptError, match=r"'web_serch_query' is not one of .*'web_search_query'"):
        ours.encode_queries(["x"], prompt_name="web_serch_query")
    with pytest.raises(ValueError, match="instruction or prompt_name, not both"):
        ours.encode_queries(["x"], "Query: ", prompt_name="sts_query")


def test_prompts_given_at_load_add_to_and_override_the_folders(folders):
    path = folders["xlmr-mean"]
    theirs = st.SentenceTransformer(str(path), device="cpu", prompts={"query": "q: ", "mine": "m: "})
    ours = InstructorEncoder.from_pretrained(path, device="cpu", prompts={"query": "q: ", "mine": "m: "})
    assert ours.instructions.query == "q: " and ours.prompts["mine"] == "m: "
    assert close(ours.encode_queries(TEXTS), theirs.encode_query(TEXTS)) <= ATOL
    assert close(ours.encode(TEXTS, prompt_name="mine"), theirs.encode(TEXTS, prompt_name="mine")) <= ATOL
    ours = InstructorEncoder.from_pretrained(path, device="cpu", default_prompt_name="query")
    theirs = st.SentenceTransformer(str(path), device="cpu", default_prompt_name="query")
    assert close(ours.encode(TEXTS), theirs.encode(TEXTS)) <= ATOL
    with pytest.raises(UnknownPromptError, match="'nope'"):
        InstructorEncoder.from_pretrained(path, device="cpu", default_prompt_name="nope")


def _hub_style(folders, tmp_path, prompts: dict[str, str]):
    """The xlmr-mean folder with ``prompts`` as the only prompts its config names (as a folder saved
    before sentence-transformers wrote empty ``query``/``document`` prompts: multilingual-e5's)."""
    folder = tmp_path / "hub-style"
    shutil.copytree(folders["xlmr-mean"], folder)
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["prompts"] = prompts
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.parametrize("document_name", ["passage", "corpus"])
def test_a_hub_style_folder_embeds_documents_with_its_passage_prompt(folders, pair, tmp_path, document_name):
    """multilingual-e5's folder names ``query`` and ``passage`` only: documents get the passage prompt
    (the document slot's names in sentence-transformers' order: document, passage, corpus)."""
    folder = _hub_style(folders, tmp_path, {"query": "query: ", document_name: "passage: "})
    ours = InstructorEncoder.from_pretrained(folder, device="cpu")
    assert ours.instructions.document == ours.prompts["document"] == "passage: "
    _, theirs = pair("xlmr-mean")  # the same weights
    assert close(ours.encode_documents(TEXTS), theirs.encode(TEXTS, prompt="passage: ")) <= ATOL


def test_instructions_passed_at_load_win_over_prompts_passed_and_the_folders(folders, pair, tmp_path):
    """A caller's ``instructions`` are the slots whatever ``prompts`` (at load, or the folder's) say:
    ``prompts["query"]`` and ``prompt_name="query"`` name the caller's instruction, never the folder's."""
    _, theirs = pair("xlmr-mean")
    mine = Instructions(query="Mine: ", document="My doc: ")
    for prompts in (None, {"query": "q: ", "document": "d: ", "extra": "e: "}):
        ours = InstructorEncoder.from_pretrained(folders["xlmr-mean"], device="cpu", instructions=mine,
                                                 prompts=prompts)  # fmt: skip
        assert ours.instructions == mine
        assert ours.prompts["query"] == "Mine: " and ours.prompts["document"] == "My doc: "
        assert close(ours.encode_queries(TEXTS), theirs.encode(TEXTS, prompt="Mine: ")) <= ATOL
        assert close(ours.encode(TEXTS, prompt_name="query"), theirs.encode(TEXTS, prompt="Mine: ")) <= ATOL
        assert close(ours.encode_documents(TEXTS), theirs.encode(TEXTS, prompt="My doc: ")) <= ATOL
    assert ours.prompts["extra"] == "e: "


def test_truncate_dim_is_checked_against_the_model_dimension_not_the_current_one(folders, pair):
    """An encoder truncated to 8 may still encode at 24 of its 32 dimensions, or be set to 24."""
    ours = InstructorEncoder.from_pretrained(folders["bert-cls-gelu-layernorm"], device="cpu", truncate_dim=8)
    _, theirs = pair("bert-cls-gelu-layernorm")
    assert ours.dimension == 8 and ours.model_dimension == 24
    wider = theirs.encode_query(TEXTS, truncate_dim=16, normalize_embeddings=True)
    assert close(ours.encode_queries(TEXTS, truncate_dim=16), wider) <= ATOL
    ours.truncate_dim = 16
    assert ours.dimension == 16
    with pytest.raises(ValueError, match="truncate_dim=25 is above this model's dimension 24"):
        ours.encode_queries(TEXTS, truncate_dim=25)
    with pytest.raises(ValueError, match="truncate_dim=25 is above this model's dimension 24"):
        ours.truncate_dim = 25


@pytest.mark.parametrize("name", ["embeddinggemma", "qwen3", "bert-cls-gelu-layernorm", "weightedmean-decoder"])
def test_truncate_dim_per_call_and_at_load(pair, folders, name):
    ours, theirs = pair(name)
    dim = 8
    expected = theirs.encode_query(TEXTS, truncate_dim=dim, normalize_embeddings=True)
    assert close(ours.encode_queries(TEXTS, truncate_dim=dim), expected) <= ATOL
    raw = theirs.encode_document(TEXTS, truncate_dim=dim)  # no renormalization asked for
    assert close(ours.encode_documents(TEXTS, truncate_dim=dim, normalize=False), raw) <= ATOL
    loaded = InstructorEncoder.from_pretrained(folders[name], device="cpu", truncate_dim=dim)
    assert loaded.dimension == dim and loaded.model_dimension == ours.model_dimension
    assert close(loaded.encode_queries(TEXTS), expected) <= ATOL
    with pytest.raises(
        ValueError, match=rf"truncate_dim={ours.model_dimension + 1} is above .* {ours.model_dimension}"
    ):
        ours.encode_queries(TEXTS, truncate_dim=ours.model_dimension + 1)


@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != "float32"])
@pytest.mark.parametrize("name", ["embeddinggemma", "xlmr-cls", "qwen3"])
def test_precision_equals_sentence_transformers(pair, name, precision):
    ours, theirs = pair(name)
    mine = ours.encode_documents(TEXTS, precision=precision)
    reference = theirs.encode_document(TEXTS, precision=precision)
    assert mine.dtype == reference.dtype and mine.shape == reference.shape
    # the float vectors agree to 1e-7; a value on a bucket's edge may land one bucket over
    differing = np.abs(mine.astype(np.int32) - reference.astype(np.int32))
    assert differing.max() <= 1 and (differing > 0).mean() <= 0.01, (differing > 0).mean()
    # on the same float vectors the quantization itself is sentence-transformers' to the value
    floats = ours.encode_documents(TEXTS)
    from sentence_transformers.quantization import quantize_embeddings as theirs_quantize

    np.testing.assert_array_equal(quantize_embeddings(floats, precision), theirs_quantize(floats, precision))


def test_int8_with_calibration_embeddings(pair):
    ours, _ = pair("xlmr-cls")
    from sentence_transformers.quantization import quantize_embeddings as theirs_quantize

    calibration = ours.encode_documents(TEXTS)
    one = ours.encode_queries(TEXTS[:1], precision="int8", calibration_embeddings=calibration)
    floats = ours.encode_queries(TEXTS[:1])
    expected = theirs_quantize(floats, "int8", calibration_embeddings=calibration)
    np.testing.assert_array_equal(one, expected)
    with pytest.raises(ValueError, match="single embedding"):
        ours.encode_queries(TEXTS[:1], precision="int8")


def test_bfloat16_left_padding_equals_sentence_transformers(folders):
    """A Qwen3-style decoder pads on the left (its tokenizer says so); in bfloat16, where the padding
    side changes the rounding, ours equals sentence-transformers' own left-padded vectors."""
    path = folders["qwen3"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = st.SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.bfloat16})
    ours = InstructorEncoder.from_pretrained(path, device="cpu", model_kwargs={"torch_dtype": "bfloat16"})
    assert ours.tokenizer.padding_side == "left"
    left = ours.encode_documents(TEXTS)
    assert close(left, theirs.encode_document(TEXTS)) <= 1e-6
    ours.tokenizer.padding_side = "right"
    assert close(ours.encode_documents(TEXTS), theirs.encode_document(TEXTS)) > 1e-3  # the padding side matters


def test_loading_options_under_the_names_users_pass(folders):
    path = folders["bert-cls-gelu-layernorm"]
    eager = InstructorEncoder.from_pretrained(path, device="cpu", model_kwargs={"attn_implementation": "eager"})
    assert eager.transformer.config._attn_implementation == "eager"
    assert eager.load_options == LoadOptions(device="cpu", attn_implementation="eager")
    with pytest.raises(ValueError, match="'token' is not a loading option"):
        InstructorEncoder.from_pretrained(path, model_kwargs={"token": "x"})


def test_a_custom_module_is_refused_by_name(folders, tmp_path):
    folder = shutil.copytree(folders["xlmr-mean"], tmp_path / "jina-like")
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["type"] = "custom_st.Transformer"  # jina-embeddings-v3's own module, with a task kwarg
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFolderError, match=r"module 0 \('custom_st.Transformer', folder .*model's own code"):
        InstructorEncoder.from_pretrained(folder, device="cpu")
    modules[0]["type"] = "sentence_transformers.base.modules.router.Router"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFolderError, match="Router.*cannot run that module exactly"):
        InstructorEncoder.from_pretrained(folder, device="cpu")


def test_save_keeps_prompts_modules_and_vectors(pair, tmp_path):
    ours, theirs = pair("bert-cls-gelu-layernorm")
    saved = ours.save_pretrained(tmp_path / "saved")
    again = st.SentenceTransformer(str(saved), device="cpu")
    assert again.prompts["query"] == ours.prompts["query"]
    assert close(again.encode_query(TEXTS), theirs.encode_query(TEXTS)) <= ATOL
    mine = InstructorEncoder.from_pretrained(saved, device="cpu")
    assert close(mine.encode_queries(TEXTS), ours.encode_queries(TEXTS)) <= ATOL


def test_adapters_take_prompt_names_and_dimensions(folders, pair):
    """LangChain (langchain-huggingface's encode_kwargs / query_encode_kwargs), LlamaIndex and Chroma
    give sentence-transformers' vectors for a named prompt per side and a Matryoshka dimension."""
    from instructor_chroma import InstructorEmbeddingFunction
    from instructor_chroma.embedding import clear_encoder_cache
    from instructor_langchain import InstructorEmbeddings
    from instructor_llamaindex import InstructorEmbedding

    path, dim = str(folders["embeddinggemma"]), 8
    _, theirs = pair("embeddinggemma")
    docs = theirs.encode(TEXTS, prompt_name="Retrieval-document", truncate_dim=dim, normalize_embeddings=True)
    query = theirs.encode(TEXTS[:1], prompt_name="Retrieval-query", truncate_dim=dim, normalize_embeddings=True)[0]

    lc = InstructorEmbeddings(
        model_name=path,
        model_kwargs={"device": "cpu"},
        encode_kwargs={"prompt_name": "Retrieval-document", "truncate_dim": dim},
        query_encode_kwargs={"prompt_name": "Retrieval-query"},
    )
    assert close(lc.embed_documents(TEXTS), docs) <= ATOL and close(lc.embed_query(TEXTS[0]), query) <= ATOL

    li = InstructorEmbedding(
        path, device="cpu", query_prompt_name="Retrieval-query", text_prompt_name="Retrieval-document", truncate_dim=dim
    )
    assert close(li.get_text_embedding_batch(TEXTS), docs) <= ATOL
    assert close(li.get_query_embedding(TEXTS[0]), query) <= ATOL

    ef = InstructorEmbeddingFunction(
        path,
        device="cpu",
        query_prompt_name="Retrieval-query",
        document_prompt_name="Retrieval-document",
        truncate_dim=dim,
    )
    assert close(ef(TEXTS), docs) <= ATOL and close(ef.embed_query(TEXTS[:1])[0], query) <= ATOL
    clear_encoder_cache()  # as in a fresh process: rebuilt from the collection's config
    rebuilt = InstructorEmbeddingFunction.build_from_config(ef.get_config())
    assert close(rebuilt.embed_query(TEXTS[:1])[0], query) <= ATOL
    with pytest.raises(ValueError, match="query_instruction or query_prompt_name, not both"):
        InstructorEmbeddingFunction(path, query_instruction="q: ", query_prompt_name="STS")


def test_cli_embed_takes_prompt_name_dim_and_precision(folders, pair, tmp_path):
    from instructor_core.cli import main

    _, theirs = pair("embeddinggemma")
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "v.npy"
    argv = ["embed", str(source), "-o", str(out), "--model", str(folders["embeddinggemma"]), "--device", "cpu"]
    assert main([*argv, "--prompt-name", "STS", "--dim", "8", "--quiet"]) == 0
    expected = theirs.encode(TEXTS, prompt_name="STS", truncate_dim=8, normalize_embeddings=True)
    assert close(np.load(out), expected) <= ATOL
    assert main([*argv, "--kind", "query", "--precision", "ubinary", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), theirs.encode_query(TEXTS, precision="ubinary"))
    assert main([*argv, "--prompt-name", "nope", "--quiet"]) == 2


def test_cli_ingest_and_search_take_prompt_name_and_dim(folders, pair, tmp_path, capsys):
    """``ingest --prompt-name --dim`` stores the prompt's text as the document instruction and the
    truncated dimension; ``search --prompt-name`` embeds queries with that prompt, at the collection's
    dimension whether ``--dim`` is repeated or not; a search at another dimension is refused."""
    from instructor_core.cli import main

    _, theirs = pair("embeddinggemma")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    model = str(folders["embeddinggemma"])
    store = ["--store", f"qdrant:{tmp_path / 'db'}", "--collection", "c", "--model", model, "--device", "cpu"]
    assert main(["ingest", str(corpus), *store, "--prompt-name", "Retrieval-document", "--dim", "8", "--quiet"]) == 0
    assert main(["collections", "info", "c", "--store", f"qdrant:{tmp_path / 'db'}", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["document_instruction"] == "title: none | text: " and info["dimension"] == 8
    docs = theirs.encode(TEXTS, prompt_name="Retrieval-document", truncate_dim=8, normalize_embeddings=True)
    query = theirs.encode([TEXTS[3]], prompt_name="Retrieval-query", truncate_dim=8, normalize_embeddings=True)[0]
    best = f"d{int(np.argmax(docs @ query))}"
    argv = ["search", TEXTS[3], *store, "--prompt-name", "Retrieval-query", "--dim", "8", "--json", "-k", "1"]
    assert main([*argv, "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["id"] == best
    # without --dim the search takes the collection's dimension (issue 31), and finds the same document
    assert main(["search", TEXTS[3], *store, "--prompt-name", "Retrieval-query", "--json", "-k", "1", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["id"] == best
    assert main(["search", TEXTS[3], *store, "--dim", "16", "--quiet"]) == 2  # another dimension: refused
    assert "dimension" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mean-sqrt-len", "weightedmean-decoder", "bert-cls-gelu-layernorm", "embeddinggemma"])
def test_bfloat16_truncate_dim_normalized_equals_sentence_transformers(folders, name):
    """Matryoshka in bfloat16: the model's own modules (its Normalize, where it has one), then the
    first ``truncate_dim`` dimensions, then one L2 normalization, as sentence-transformers does; a model
    without a Normalize module was normalized, truncated and normalized again here, up to 2e-3 off."""
    path = folders[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = st.SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.bfloat16})
    ours = InstructorEncoder.from_pretrained(path, device="cpu", dtype="bfloat16")
    for dim in (8, 16):
        expected = theirs.encode_document(TEXTS, truncate_dim=dim, normalize_embeddings=True)
        assert close(ours.encode_documents(TEXTS, truncate_dim=dim), expected) <= 1e-6
        raw = theirs.encode_document(TEXTS, truncate_dim=dim)
        assert close(ours.encode_documents(TEXTS, truncate_dim=dim, normalize=False), raw) <= 1e-6
    # untruncated: a model ending in Normalize is unit length as it is (normalized once, as theirs by default)
    whole = theirs.encode_document(TEXTS, normalize_embeddings=not ours.spec.normalize)
    assert close(ours.encode_documents(TEXTS), whole) <= 1e-6
