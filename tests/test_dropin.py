"""Swapping the import is the whole migration: each anchor's documented constructor call works on
our class unchanged and gives our vectors with the same instructions.

Anchors: LangChain's ``HuggingFaceInstructEmbeddings`` (langchain_community), LlamaIndex's
``InstructorEmbedding`` (llama-index-embeddings-instructor) and chroma's built-in
``InstructorEmbeddingFunction``. The hub ids in their calls resolve offline to a tiny random T5 in
the hub's layout, placed in a Hugging Face cache exactly as ``snapshot_download`` leaves it.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from instructor_core import AmbiguousInstructorWarning, InstructorEncoder, LoadOptions
from tests import tiny_models

TEXTS = ["A man plays the guitar.", "Cells divide.", "the bank transfer failed", "Water boils at 100 C."]
QUERY = "Represent the Science question for retrieving supporting documents: "
DOCUMENT = "Represent the Science document for retrieval: "
INSTRUCTOR_IDS = ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl")
REV = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
# the anchors' default instructions, copied from their sources
LANGCHAIN_DEFAULT_EMBED = "Represent the document for retrieval: "
LANGCHAIN_DEFAULT_QUERY = "Represent the question for retrieving supporting documents: "


@pytest.fixture(scope="module")
def hub_layout(tmp_path_factory) -> Path:
    return tiny_models.build_t5_instructor(tmp_path_factory.mktemp("dropin") / "model", layout="hub")


def hf_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """Place ``source`` in ``cache`` as huggingface_hub's snapshot_download leaves a download."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REV
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REV)
    return snapshot


@pytest.fixture
def hub(tmp_path, hub_layout, monkeypatch):
    """The default Hugging Face cache, holding the three INSTRUCTOR hub ids."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    snapshots = {name: hf_cache(cache, name, hub_layout) for name in INSTRUCTOR_IDS}
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    yield snapshots


@pytest.fixture(scope="module")
def ours(hub_layout) -> InstructorEncoder:
    """Our encoder, the reference: the same checkpoint stated to be an INSTRUCTOR checkpoint."""
    return InstructorEncoder.from_pretrained(hub_layout, device="cpu", instructor=True)


@pytest.fixture(autouse=True)
def no_ambiguity_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmbiguousInstructorWarning)
        yield


# ---------------------------------------------------------------------------------------------- LangChain
def test_langchain_documented_call(hub, ours):
    from instructor_langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    # langchain_community.embeddings.HuggingFaceInstructEmbeddings' docstring example, unchanged
    model_name = "hkunlp/instructor-large"
    model_kwargs = {"device": "cpu"}
    encode_kwargs = {"normalize_embeddings": True}
    hf = HuggingFaceInstructEmbeddings(model_name=model_name, model_kwargs=model_kwargs, encode_kwargs=encode_kwargs)

    assert hf.encoder.spec.is_instructor and not hf.encoder.spec.include_prompt
    assert hf.instructions.document == LANGCHAIN_DEFAULT_EMBED and hf.instructions.query == LANGCHAIN_DEFAULT_QUERY
    docs = np.array(hf.embed_documents(TEXTS))
    query = np.array(hf.embed_query(TEXTS[1]))
    assert np.abs(docs - ours.encode_documents(TEXTS, LANGCHAIN_DEFAULT_EMBED)).max() <= 1e-5
    assert np.abs(query - ours.encode_queries(TEXTS[1:2], LANGCHAIN_DEFAULT_QUERY)[0]).max() <= 1e-5


def test_langchain_every_documented_keyword(tmp_path, hub_layout, ours):
    from instructor_langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    cache = tmp_path / "st-cache"
    hf_cache(cache, "hkunlp/instructor-xl", hub_layout)
    hf = HuggingFaceInstructEmbeddings(
        model_name="hkunlp/instructor-xl",
        embed_instruction=DOCUMENT,
        query_instruction=QUERY,
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": 2},
        cache_folder=str(cache),
    )
    assert hf.batch_size == 2 and hf.normalize and hf.embed_instruction == DOCUMENT == hf.document_instruction
    assert hf.cache_folder == str(cache)
    assert np.abs(np.array(hf.embed_documents(TEXTS)) - ours.encode_documents(TEXTS, DOCUMENT)).max() <= 1e-5
    assert np.abs(np.array(hf.embed_query(TEXTS[0])) - ours.encode_queries(TEXTS[:1], QUERY)[0]).max() <= 1e-5


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"model_kwargs": {"token": "hf_x"}}, r"model_kwargs key 'token' is not supported"),
        ({"model_kwargs": {"model_kwargs": {"torch_dtype": "float16"}}}, r"model_kwargs key 'model_kwargs'"),
        ({"encode_kwargs": {"convert_to_tensor": True}}, r"encode_kwargs key 'convert_to_tensor' is not supported"),
        ({"encode_kwargs": {"batch_size": 4}, "batch_size": 8}, r"contradicts batch_size=8"),
        ({"model_kwargs": {"device": "cpu"}, "device": "cuda"}, r"contradicts device='cuda'"),
        ({"embed_instruction": "a: ", "document_instruction": "b: "}, r"embed_instruction .* not both"),
        ({"multi_process": True}, r"extra_forbidden|Extra inputs"),
        ({"model_kwargs": "cpu"}, r"model_kwargs must be a dict"),
    ],
)
def test_langchain_refuses_what_it_does_not_support(hub, options, pattern):
    from instructor_langchain import InstructorEmbeddings

    with pytest.raises(ValidationError, match=pattern):
        InstructorEmbeddings(model_name="hkunlp/instructor-large", **options)


def test_langchain_loading_options_need_a_model_name(ours):
    from instructor_langchain import InstructorEmbeddings

    with pytest.raises(ValidationError, match="dtype, max_length only apply when loading"):
        InstructorEmbeddings(encoder=ours, dtype="bfloat16", max_length=16)
    with pytest.raises(ValidationError, match="hkunlp/instructor-large"):
        InstructorEmbeddings()


# ---------------------------------------------------------------------------------------------- LlamaIndex
def test_llamaindex_documented_call(tmp_path, hub_layout, ours):
    from instructor_llamaindex import InstructorEmbedding

    cache = tmp_path / "cache"
    hf_cache(cache, "hkunlp/instructor-base", hub_layout)
    # llama_index.embeddings.instructor.InstructorEmbedding's constructor, every keyword
    embed_model = InstructorEmbedding(
        model_name="hkunlp/instructor-base",
        query_instruction=QUERY,
        text_instruction=DOCUMENT,
        embed_batch_size=10,
        cache_folder=str(cache),
        device="cpu",
    )
    assert embed_model.model_name == "hkunlp/instructor-base" and embed_model.cache_folder == str(cache)
    assert embed_model.encoder.spec.is_instructor
    query = np.array(embed_model.get_query_embedding(TEXTS[0]))
    docs = np.array(embed_model.get_text_embedding_batch(TEXTS))
    assert np.abs(query - ours.encode_queries(TEXTS[:1], QUERY)[0]).max() <= 1e-5
    assert np.abs(docs - ours.encode_documents(TEXTS, DOCUMENT)).max() <= 1e-5
    # the same call by position, in the anchor's order
    positional = InstructorEmbedding("hkunlp/instructor-base", QUERY, DOCUMENT, 10, str(cache), "cpu")
    assert np.abs(np.array(positional.get_query_embedding(TEXTS[0])) - query).max() <= 1e-6


def test_llamaindex_default_instructions_and_unknown_keywords(hub, ours):
    from instructor_llamaindex import InstructorEmbedding

    embed_model = InstructorEmbedding(model_name="hkunlp/instructor-base", device="cpu")
    assert embed_model.instructions == ours.instructions  # the paper's retrieval pair, as the anchor's defaults
    assert (
        np.abs(np.array(embed_model.get_text_embedding(TEXTS[0])) - ours.encode_documents(TEXTS[:1])[0]).max() <= 1e-5
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'model_kwargs'"):
        InstructorEmbedding(model_name="hkunlp/instructor-base", model_kwargs={"device": "cpu"})
    with pytest.raises(ValueError, match="backend, revision only apply when loading"):
        InstructorEmbedding(encoder=ours, options=LoadOptions(backend="onnx", revision="v2"))


# ---------------------------------------------------------------------------------------------- Chroma
@pytest.fixture
def fresh_chroma_cache():
    from instructor_chroma import clear_encoder_cache

    clear_encoder_cache()
    yield
    clear_encoder_cache()


def test_chroma_documented_call(hub, ours, fresh_chroma_cache):
    from instructor_chroma import InstructorEmbeddingFunction

    instruction = "Represent the Science sentence: "
    # chromadb.utils.embedding_functions.InstructorEmbeddingFunction's keywords, unchanged
    ef = InstructorEmbeddingFunction(model_name="hkunlp/instructor-xl", device="cpu", instruction=instruction)
    assert ef.model_name == ef.model == "hkunlp/instructor-xl"
    # one instruction for both sides, as there
    assert ef.instructions.query == ef.instructions.document == instruction
    expected = ours.encode_documents(TEXTS, instruction)
    assert np.abs(np.array(ef(TEXTS)) - expected).max() <= 1e-5
    assert np.abs(np.array(ef.embed_query(TEXTS)) - expected).max() <= 1e-5
    positional = InstructorEmbeddingFunction("hkunlp/instructor-xl", "cpu", instruction)
    assert np.abs(np.array(positional(TEXTS)) - expected).max() <= 1e-6


def test_chroma_without_instruction_uses_the_models_pair(hub, ours, fresh_chroma_cache):
    from instructor_chroma import InstructorEmbeddingFunction

    ef = InstructorEmbeddingFunction(model_name="hkunlp/instructor-base", device="cpu")
    assert ef.instructions == ours.instructions and ef.instructions.query != ef.instructions.document
    assert np.abs(np.array(ef.embed_query(TEXTS)) - ours.encode_queries(TEXTS)).max() <= 1e-5
    # instruction="" reproduces the built-in function's vectors made without an instruction
    bare = InstructorEmbeddingFunction(model_name="hkunlp/instructor-base", device="cpu", instruction="")
    assert np.abs(np.array(bare(TEXTS)) - ours.encode_documents(TEXTS, "")).max() <= 1e-5
    with pytest.raises(ValueError, match="instruction .* or query_instruction/document_instruction, not both"):
        InstructorEmbeddingFunction("hkunlp/instructor-base", instruction="x: ", query_instruction="y: ")
    with pytest.raises(ValueError, match="model or model_name"):
        InstructorEmbeddingFunction("hkunlp/instructor-base", model_name="hkunlp/instructor-xl")
    with pytest.raises(ValueError, match="hkunlp/instructor-base"):
        InstructorEmbeddingFunction()
    with pytest.raises(TypeError, match="unexpected keyword argument 'model_kwargs'"):
        InstructorEmbeddingFunction("hkunlp/instructor-base", model_kwargs={})


def test_chroma_config_keeps_a_stated_instructor(tmp_path, hub, hub_layout, ours, fresh_chroma_cache):
    from instructor_chroma import InstructorEmbeddingFunction, clear_encoder_cache

    folder = shutil.copytree(hub_layout, tmp_path / "unmarked")  # says nothing: would warn and pool
    ef = InstructorEmbeddingFunction(str(folder), device="cpu", options=LoadOptions(instructor=True))
    config = ef.get_config()
    assert config["instructor"] is True
    clear_encoder_cache()  # as in a fresh process: the model is loaded again from the config
    fresh_process_like = InstructorEmbeddingFunction.build_from_config(config)
    assert fresh_process_like.encoder is not ef.encoder and fresh_process_like.encoder.spec.is_instructor
    assert np.abs(np.array(fresh_process_like.embed_query(TEXTS)) - ours.encode_queries(TEXTS)).max() <= 1e-5
    # a shared encoder loaded with instructor=True carries it into the config too
    assert InstructorEmbeddingFunction(encoder=ours, model=str(folder)).get_config()["instructor"] is True
    detected = InstructorEncoder.from_pretrained(hub["hkunlp/instructor-base"], device="cpu")
    assert "instructor" not in InstructorEmbeddingFunction(encoder=detected, model="x").get_config()
    with pytest.raises(ValueError, match="'instructor' must be a bool"):
        InstructorEmbeddingFunction.validate_config({**config, "instructor": "yes"})


# ---------------------------------------------------------------------------------------------- the fast path
LOADING = {"backend": "onnx-int8", "dtype": None, "max_length": 48, "revision": "v2", "trust_remote_code": True}


@pytest.fixture
def recorded(monkeypatch, ours):
    """Record what each adapter passes to InstructorEncoder.from_pretrained."""
    calls: list[dict] = []

    def fake(name_or_path, instructions=None, *, options=None):
        calls.append({"name": name_or_path, **dataclasses.asdict(options or LoadOptions())})
        return ours

    monkeypatch.setattr(InstructorEncoder, "from_pretrained", staticmethod(fake))
    return calls


def test_adapters_pass_loading_options_to_from_pretrained(recorded, fresh_chroma_cache):
    from instructor_chroma import InstructorEmbeddingFunction
    from instructor_langchain import InstructorEmbeddings
    from instructor_llamaindex import InstructorEmbedding

    InstructorEmbeddings(model_name="m", instructor=True, **LOADING)
    InstructorEmbedding("m", options=LoadOptions(instructor=True, **LOADING))
    InstructorEmbeddingFunction("m", options=LoadOptions(instructor=True, **LOADING))
    assert len(recorded) == 3
    for call in recorded:
        assert call["name"] == "m" and call["instructor"] is True
        assert {key: call[key] for key in LOADING} == LOADING
    # trust_remote_code stays off unless asked for
    recorded.clear()
    InstructorEmbeddings(model_name="m")
    InstructorEmbedding("m")
    InstructorEmbeddingFunction("m2")
    assert [call["trust_remote_code"] for call in recorded] == [False, False, False]
    assert [call["backend"] for call in recorded] == ["torch", "torch", "torch"]


def test_dtype_and_max_length_reach_the_encoder(hub):
    from instructor_langchain import InstructorEmbeddings

    emb = InstructorEmbeddings(model_name="hkunlp/instructor-large", device="cpu", dtype="bfloat16", max_length=40)
    assert emb.encoder.max_length == 40
    assert str(next(emb.encoder.transformer.parameters()).dtype) == "torch.bfloat16"
    assert len(emb.embed_query("Cells divide.")) == 24
