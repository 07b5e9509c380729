"""LangChain's standard embeddings suites (langchain-tests) against InstructorEmbeddings.

Run on the real offline all-MiniLM-L6-v2 (sharing the session's loaded encoder) and on a tiny
random BERT loaded from its folder by ``model_name``, so both constructors pass the suites.
The suites read ``embeddings_class`` / ``embedding_model_params`` as properties; a class-scoped
autouse fixture hands them the session fixtures.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from instructor_langchain import InstructorEmbeddings


class _MiniLM:
    """Params: the shared, already loaded all-MiniLM-L6-v2."""

    _params: dict[str, Any] = {}

    @pytest.fixture(autouse=True, scope="class")
    def _shared_encoder(self, request, minilm_encoder) -> None:
        request.cls._params = {"encoder": minilm_encoder, "batch_size": 16}

    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return dict(self._params)


class _TinyBert:
    """Params: a tiny random BERT (with query/document prompts) loaded from its folder."""

    _params: dict[str, Any] = {}

    @pytest.fixture(autouse=True, scope="class")
    def _model_folder(self, request, tiny_bert_path) -> None:
        request.cls._params = {"model_name": str(tiny_bert_path), "device": "cpu", "batch_size": 2}

    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return dict(self._params)


class _Served:
    """Params: a running instructor serve of the tiny BERT (``server=``): no model loaded in this process."""

    _params: dict[str, Any] = {}

    @pytest.fixture(autouse=True, scope="class")
    def _server(self, request, tiny_bert_path):
        from tests.serve_helpers import running

        with running(tiny_bert_path) as (_, url):
            request.cls._params = {"server": url}
            yield

    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return dict(self._params)


@pytest.mark.server
class TestServedIntegration(_Served, EmbeddingsIntegrationTests):
    pass


class TestMiniLMUnit(_MiniLM, EmbeddingsUnitTests):
    pass


class TestMiniLMIntegration(_MiniLM, EmbeddingsIntegrationTests):
    pass


class TestTinyBertUnit(_TinyBert, EmbeddingsUnitTests):
    pass


class TestTinyBertIntegration(_TinyBert, EmbeddingsIntegrationTests):
    pass


def test_suites_ran_on_both_models(minilm_encoder, tiny_bert_path):
    """The params the suites got build working embeddings of the two models' dimensions."""
    assert InstructorEmbeddings(encoder=minilm_encoder).dimension == 384
    assert len(InstructorEmbeddings(model_name=str(tiny_bert_path)).embed_query("foo")) == 32
