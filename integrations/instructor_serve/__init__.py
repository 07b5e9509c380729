"""instructor_serve: ``instructor serve``, an embedding server that keeps the query/document slots over HTTP.

OpenAI-compatible ``POST /v1/embeddings`` (the role in ``input_type``), TEI-compatible ``/embed``,
``/embed_sparse`` and ``/info``, ``/health`` and Prometheus ``/metrics``, over one model and one
queue that batches the inputs of every request together by tokens. Install with the ``serve`` extra
(``pip install -e ".[serve]"`` from a checkout); :class:`instructor_core.RemoteEncoder` is its client.
"""

from __future__ import annotations

from instructor_serve.app import ServerState, create_app
from instructor_serve.errors import ApiError
from instructor_serve.runner import serve
from instructor_serve.settings import API_KEY_ENV, ServeSettings, is_loopback

__all__ = ["API_KEY_ENV", "ApiError", "ServeSettings", "ServerState", "create_app", "is_loopback", "serve"]
