"""Each adapter page's parameter list is the adapter's real signature, and every loading keyword it lists loads.

The LangChain and LlamaIndex pages list their parameters in a table, the Chroma page in a signature block.
Every name listed must be a parameter the class takes (a field, an argument, or a :class:`LoadOptions`
keyword, which the adapters take from that one declaration), and every parameter the class takes must be
listed. Then each listed loading keyword is given, alone, to the adapter over a tiny model: it must be
accepted and reach the loaded encoder's options.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from instructor_core import LoadOptions
from instructor_core.model.load_options import ALIASES
from tests.conftest import REPO

DOCS = REPO / "docs" / "integrations"
LOADING = {*LoadOptions.names(), *ALIASES}


def _table_names(page: Path) -> set[str]:
    """The backticked names in the first column of the page's `| parameter |` table."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| parameter |"))
    names: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def _block_names(page: Path) -> set[str]:
    """The names in the page's ``InstructorEmbeddingFunction(...)`` signature block."""
    text = page.read_text(encoding="utf-8")
    block = text[text.index("InstructorEmbeddingFunction(\n") : text.index("\n)\n```", text.index("## The embedding"))]
    return {m.group(1) for m in re.finditer(r"^\s+([a-z_]+)(?:=|,)", block, re.M)}


def _signature_names(function) -> tuple[set[str], bool]:
    """Named parameters of ``function`` (self aside) and whether it takes ``**keywords``."""
    parameters = list(inspect.signature(function).parameters.values())[1:]
    named = {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named, any(p.kind is p.VAR_KEYWORD for p in parameters)


def _adapters():
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    pytest.importorskip("chromadb")
    from instructor_chroma import InstructorEmbeddingFunction
    from instructor_langchain import InstructorEmbeddings
    from instructor_llamaindex import InstructorEmbedding

    return InstructorEmbeddings, InstructorEmbedding, InstructorEmbeddingFunction


def _accepted(adapter) -> tuple[set[str], set[str]]:
    """(what the adapter takes, what its page must list): its named parameters (LangChain: its pydantic fields
    and the names its validator reads) and, where it takes keywords from LoadOptions, those."""
    if hasattr(adapter, "model_fields") and adapter.__name__ == "InstructorEmbeddings":
        fields = {name for name, f in adapter.model_fields.items() if not f.exclude or name in ("encoder", "api_key")}
        return fields | LOADING | {"embed_instruction"}, fields - {"given_options"}
    named, var_keyword = _signature_names(adapter.__init__)
    return named | (LOADING if var_keyword else set()), named


@pytest.mark.parametrize(
    ("page", "index", "reader"),
    [("langchain.md", 0, _table_names), ("llamaindex.md", 1, _table_names), ("chroma.md", 2, _block_names)],
)
def test_each_documented_parameter_is_in_the_signature_and_each_parameter_documented(page, index, reader):
    adapter = _adapters()[index]
    documented = reader(DOCS / page)
    takes, must_list = _accepted(adapter)
    assert documented - takes == set(), f"{page} lists parameters {adapter.__name__} does not take"
    assert must_list - documented == set(), f"{page} leaves out parameters of {adapter.__name__}"
    listed_loading = documented & LOADING
    assert set(LoadOptions.names()) - {"device", "truncate_dim"} <= listed_loading | {"cache_dir"}, page


def _sample(name: str, tmp_path: Path) -> tuple[object, str, object]:
    """A value for the loading keyword ``name`` that is not its default: (value, field, value in the options)."""
    folder = str(tmp_path / "cache")
    samples: dict[str, tuple[object, object]] = {
        "device": ("cpu", "cpu"),
        "max_length": (64, 64),
        "backend": ("torch", "torch"),  # the default: the ONNX backends export the model (tests/test_onnx_cache.py)
        "dtype": ("bfloat16", "bfloat16"),
        "torch_dtype": ("bfloat16", "bfloat16"),
        "revision": ("main", "main"),
        "trust_remote_code": (True, True),
        "cache_dir": (folder, folder),
        "cache_folder": (folder, folder),
        "instructor": (False, False),
        "prompts": ({"STS": "Represent the sentence: "}, (("STS", "Represent the sentence: "),)),
        "default_prompt_name": ("query", "query"),
        "attn_implementation": ("eager", "eager"),
        "backend_cache_dir": (folder, folder),
        "truncate_dim": (8, 8),
    }
    value, stored = samples[name]
    return value, LoadOptions.canonical(name) or name, stored


def _documented_loading() -> list[tuple[int, str]]:
    pages = [
        _table_names(DOCS / "langchain.md"),
        _table_names(DOCS / "llamaindex.md"),
        _block_names(DOCS / "chroma.md"),
    ]
    return [(index, name) for index, names in enumerate(pages) for name in sorted(names & LOADING)]


@pytest.mark.parametrize(("index", "name"), _documented_loading())
def test_every_documented_loading_keyword_loads(index, name, tiny_bert_path, tmp_path):
    adapter = _adapters()[index]
    value, field, stored = _sample(name, tmp_path)
    first = "model" if adapter.__name__ == "InstructorEmbeddingFunction" else "model_name"
    made = adapter(**{first: str(tiny_bert_path), name: value})  # a TypeError here: the keyword is refused
    encoder = made.encoder if hasattr(made, "encoder") else made._encoder
    if field == "truncate_dim":  # the adapter's own field, or (LangChain) the loaded encoder's
        assert stored in (made.truncate_dim, encoder.truncate_dim)
    elif field == "device":
        assert encoder.device.type == "cpu"
    else:
        assert getattr(encoder.load_options, field) == stored
    if field == "max_length":
        assert encoder.max_length == 64


@pytest.mark.parametrize("index", [1, 2])
def test_an_unknown_keyword_is_a_type_error_naming_the_loading_keywords(index, tiny_bert_path):
    adapter = _adapters()[index]
    first = "model" if adapter.__name__ == "InstructorEmbeddingFunction" else "model_name"
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'max_lenght'.*max_length"):
        adapter(**{first: str(tiny_bert_path), "max_lenght": 64})
