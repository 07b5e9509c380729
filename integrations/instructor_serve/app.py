"""The ASGI application: OpenAI ``/v1/embeddings``, TEI ``/embed`` ``/embed_sparse`` ``/info``,
``/health`` and ``/metrics``, over one :class:`~instructor_serve.batcher.Batcher`.

Built on Starlette (the ASGI toolkit FastAPI is made of): the routes read their bodies themselves,
so a body limit holds before a body is read whole, and every refusal is the OpenAI error envelope
with the index of the input at fault, which a schema-validating framework would reshape.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from instructor_core.errors import InstructorError
from instructor_core.model.encoder import InstructorEncoder
from instructor_core.model.prompts import resolve_prompt
from instructor_core.version import __version__
from instructor_serve.batcher import Batcher, Job
from instructor_serve.errors import ApiError, envelope
from instructor_serve.metrics import Metrics
from instructor_serve.requests import EmbedRequest, parse_json, read_openai, read_sparse, read_tei
from instructor_serve.settings import InputType, ServeSettings

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("instructor_serve")


class _OrjsonResponse(JSONResponse):
    """JSON through orjson: float vectors serialize several times faster than with ``json``."""

    def render(self, content: Any) -> bytes:  # noqa: ANN401 (any JSON value)
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class ServerState:
    """What the routes share: the settings, the model once loaded, and the drain switch.

    Attributes:
        settings: The limits and defaults.
        model_label: The model as the user named it (``/info``'s ``model_id``).
        metrics: The process's metrics.
        encoder: The loaded model (None while loading).
        batcher: The queue over it (None while loading).
        load_error: Why loading failed, if it did.
        draining: Set by SIGTERM: new requests are answered 503, accepted ones finish.
        in_flight: Embedding requests accepted and not yet answered.
    """

    settings: ServeSettings
    model_label: str
    metrics: Metrics = field(default_factory=Metrics)
    encoder: InstructorEncoder | None = None
    batcher: Batcher | None = None
    load_error: str | None = None
    draining: bool = False
    in_flight: int = 0
    _bm25: Any = None

    @property
    def ready(self) -> bool:
        """The model is loaded and the server is not draining."""
        return self.batcher is not None and not self.draining

    def bm25(self) -> Any:  # noqa: ANN401 (instructor_qdrant.bm25.Bm25, an optional extra)
        """The BM25 that ``ingest --hybrid`` stores (qdrant-edge-py), made on first use."""
        if self._bm25 is None:
            try:
                from instructor_qdrant.bm25 import Bm25
            except ImportError as exc:
                raise ApiError(
                    501,
                    f'/embed_sparse needs the qdrant extra on the server (pip install -e ".[qdrant]"): {exc}',
                    type="server_error",
                    code="sparse_unavailable",
                ) from None
            self._bm25 = Bm25()
        return self._bm25

    def info(self) -> dict[str, Any]:
        """``GET /info``: the model, its dimension, prompts, instructions, limits and fingerprint."""
        encoder = self.encoder
        s = self.settings
        body: dict[str, Any] = {
            "model_id": self.model_label,
            "model": s.model_name or self.model_label,
            "version": __version__,
            "ready": self.ready,
            "default_input_type": s.default_input_type,
            "max_client_batch_size": s.max_client_batch_size,
            "max_batch_tokens": s.max_batch_tokens,
            "max_batch_size": s.max_batch_size,
            "max_queue_inputs": s.max_queue_inputs,
            "max_input_chars": s.max_input_chars,
            "auto_truncate": s.auto_truncate,
        }
        if encoder is not None:
            body.update(
                dimension=encoder.dimension,
                model_dimension=encoder.model_dimension,
                truncate_dim=encoder.truncate_dim,
                max_input_length=encoder.max_length,
                instructions={"query": encoder.instructions.query, "document": encoder.instructions.document},
                prompts=encoder.prompts,
                default_prompt_name=encoder.default_prompt_name,
                fingerprint=_fingerprint(encoder),
                include_prompt=encoder.spec.include_prompt,
                instructor=encoder.spec.instructor_stated,
                backend=encoder.backend,
            )
        return body


def _fingerprint(encoder: InstructorEncoder) -> str | None:
    try:
        return encoder.fingerprint
    except (InstructorError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- helpers
def _check_key(state: ServerState, request: Request) -> None:
    key = state.settings.api_key
    if key is None:
        return
    given = request.headers.get("authorization", "")
    expected = f"Bearer {key}"
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise ApiError(
            401,
            "missing or wrong API key: send the header 'Authorization: Bearer KEY' (the openai client's api_key)",
            type="authentication_error",
            code="invalid_api_key",
        )


def _check_ready(state: ServerState) -> None:
    if state.draining:
        raise ApiError(503, "the server is shutting down; send the request to another replica", type="server_error",
                       code="shutting_down")  # fmt: skip
    if state.load_error is not None:
        raise ApiError(503, f"the model failed to load: {state.load_error}", type="server_error", code="load_failed")
    if state.batcher is None:
        raise ApiError(503, "the model is still loading; /health turns 200 when it is ready", type="server_error",
                       code="loading")  # fmt: skip


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (before it is read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"the body is {int(declared)} bytes; this server takes at most {limit} (--max-body-bytes)",
            code="body_too_large",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body passed {limit} bytes (--max-body-bytes)", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _watch_disconnect(request: Request, job: Job) -> None:
    """Mark ``job`` cancelled when its client goes, so its queued inputs are dropped."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancelled = True
            return


def _instruction(encoder: InstructorEncoder, req: EmbedRequest) -> str:
    if req.prompt_name is not None:
        return resolve_prompt(encoder.prompts, req.prompt_name)
    if req.instruction is not None:
        return req.instruction
    slots = encoder.instructions
    return slots.query if req.input_type == "query" else slots.document


async def _embed(state: ServerState, request: Request, req: EmbedRequest) -> tuple[np.ndarray, int]:
    """The vectors of a request's texts (float32 ``(n, dim)``) and its token count."""
    encoder, batcher = state.encoder, state.batcher
    assert encoder is not None and batcher is not None
    dim = req.dimensions if req.dimensions is not None else encoder.truncate_dim
    if dim is not None and dim > encoder.model_dimension:
        raise ApiError(
            422, f"dimensions={dim} is above this model's dimension {encoder.model_dimension}", param="dimensions"
        )
    try:
        instruction = _instruction(encoder, req)
        encoder.prompt_length(instruction)
    except InstructorError as exc:
        raise ApiError(422, str(exc), param="prompt_name" if req.prompt_name else "instruction") from None
    batcher.reserve(len(req.texts))  # 429 at once when the queue is full
    queued = False
    try:
        ids, cut = await batcher.tokenize([(instruction, text) for text in req.texts])
        if not req.truncate and any(cut):
            index = cut.index(True)
            raise ApiError(
                422,
                f"input[{index}] is longer than the model's {encoder.max_length} tokens (instruction included); "
                "send truncate: true to have it cut, or shorten it",
                param=f"input[{index}]",
                code="input_too_long",
            )
        empty = encoder.first_unpoolable(ids, [instruction] * len(ids))
        if empty is not None:
            raise ApiError(
                422,
                f"input[{empty}] leaves no token to embed (an empty text, on a tokenizer that adds no special tokens, "
                "or only the instruction's tokens, which this model leaves out of pooling)",
                param=f"input[{empty}]",
            )
        job = Job(instruction=instruction, normalize=req.normalize, dim=dim, ids=ids)
        batcher.submit(job)
        queued = True
    finally:
        if not queued:
            batcher.release(len(req.texts))
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(request, job))
    try:
        await job.done.wait()
    finally:
        watcher.cancel()
    if job.error is not None:
        raise job.error
    assert job.vectors is not None
    vectors = job.vectors if dim is None else job.vectors[:, :dim]
    state.metrics.tokens.inc(job.tokens)
    return vectors, job.tokens


def _route(
    state: ServerState, name: str, handler: Callable[[Request], Awaitable[Response]], *, embeds: bool
) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` with the key check, readiness, metrics, and every failure as the OpenAI envelope."""

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        counted = False
        try:
            _check_key(state, request)
            if embeds:
                _check_ready(state)
                state.in_flight += 1
                counted = True
            response = await handler(request)
        except ApiError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status)
        except Exception:  # a bug: 500, and the log keeps the traceback
            log.exception("%s %s failed", request.method, request.url.path)
            response = JSONResponse(
                envelope("internal error; the server's log has the traceback", type="server_error", code="internal"),
                status_code=500,
            )
        finally:
            if counted:
                state.in_flight -= 1
        state.metrics.requests.labels(name, str(response.status_code)).inc()
        state.metrics.latency.labels(name).observe(time.perf_counter() - start)
        return response

    return endpoint


# ---------------------------------------------------------------------------------------------- routes
def _openai_handler(state: ServerState, role: InputType | None) -> Callable[[Request], Awaitable[Response]]:
    """``POST /v1/embeddings``: the OpenAI shape, float or base64."""

    async def handler(request: Request) -> Response:
        data = parse_json(await _read_body(request, state.settings.max_body_bytes))
        req = read_openai(data, state.settings, role)
        state.metrics.inputs.labels("openai").inc(len(req.texts))
        vectors, tokens = await _embed(state, request, req)
        if req.encoding_format == "base64":
            little = vectors.astype("<f4", copy=False)
            data_rows = [{"object": "embedding", "index": i, "embedding": base64.b64encode(v.tobytes()).decode()}
                         for i, v in enumerate(little)]  # fmt: skip
        else:
            data_rows = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        body = {
            "object": "list",
            "data": data_rows,
            "model": state.settings.model_name or state.model_label,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _OrjsonResponse(body)

    return handler


def _tei_handler(state: ServerState, role: InputType | None) -> Callable[[Request], Awaitable[Response]]:
    """``POST /embed``: TEI's shape, a list of float lists."""

    async def handler(request: Request) -> Response:
        req = read_tei(parse_json(await _read_body(request, state.settings.max_body_bytes)), state.settings, role)
        state.metrics.inputs.labels("tei").inc(len(req.texts))
        vectors, _ = await _embed(state, request, req)
        return _OrjsonResponse(vectors)

    return handler


def _routes(state: ServerState) -> list[Route]:
    async def tei_embed_sparse(request: Request) -> Response:
        texts, input_type = read_sparse(
            parse_json(await _read_body(request, state.settings.max_body_bytes)), state.settings
        )
        state.metrics.inputs.labels("sparse").inc(len(texts))
        bm25 = state.bm25()
        pairs = bm25.embed_queries(texts) if input_type == "query" else bm25.embed_documents(texts)
        return _OrjsonResponse(
            [[{"index": i, "value": v} for i, v in zip(indices, values, strict=True)] for indices, values in pairs]
        )

    async def info(request: Request) -> Response:
        return _OrjsonResponse(state.info())

    async def health(request: Request) -> Response:
        if state.draining:
            return _OrjsonResponse({"status": "draining"}, status_code=503)
        if state.load_error is not None:
            return _OrjsonResponse({"status": "failed", "error": state.load_error}, status_code=503)
        if state.batcher is None:
            return _OrjsonResponse({"status": "loading"}, status_code=503)
        return _OrjsonResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        state.metrics.queue_depth.set(state.batcher.waiting if state.batcher is not None else 0)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = []
    # /v1/embeddings takes the role from the body (else the server's default); /query/... and /document/...
    # fix the default for clients that can set a base URL but not an extra field (Haystack's OpenAI embedders)
    roles: tuple[tuple[str, InputType | None], ...] = (("", None), ("/query", "query"), ("/document", "document"))
    for prefix, role in roles:
        embeddings = _route(state, "openai", _openai_handler(state, role), embeds=True)
        routes += [
            Route(f"{prefix}/v1/embeddings", embeddings, methods=["POST"]),
            Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
            Route(f"{prefix}/embed", _route(state, "tei", _tei_handler(state, role), embeds=True), methods=["POST"]),
        ]
    return [
        *routes,
        Route("/embed_sparse", _route(state, "sparse", tei_embed_sparse, embeds=False), methods=["POST"]),
        Route("/info", _route(state, "info", info, embeds=False), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", _route(state, "metrics", metrics, embeds=False), methods=["GET"]),
    ]


def create_app(
    settings: ServeSettings,
    load: Callable[[], InstructorEncoder],
    *,
    model_label: str,
    on_load_error: Callable[[str], None] | None = None,
) -> tuple[Starlette, ServerState]:
    """The ASGI app and its state; the model is loaded by ``load`` on a thread once the app starts,
    so ``/health`` answers (503, then 200) while it loads.

    Args:
        settings: Limits and defaults.
        load: Returns the loaded encoder (raises an ``InstructorError`` on a bad model folder).
        model_label: The model as the user named it.
        on_load_error: Called with the one-line reason when ``load`` fails (the CLI stops the server).
    """
    state = ServerState(settings=settings, model_label=model_label)

    async def load_model() -> None:
        try:
            encoder = await asyncio.to_thread(load)
        except Exception as exc:  # reported, not raised: the server keeps answering /health
            state.load_error = f"{type(exc).__name__}: {exc}".splitlines()[0] if not isinstance(
                exc, InstructorError) else str(exc).splitlines()[0]  # fmt: skip
            if not isinstance(exc, InstructorError):
                log.error("loading the model failed", exc_info=exc)
            if on_load_error is not None:
                on_load_error(state.load_error)
            return
        state.encoder = encoder
        state.batcher = Batcher(
            encoder,
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_size=settings.max_batch_size,
            max_queue_inputs=settings.max_queue_inputs,
            observe=state.metrics.observe_pass,
            dropped=state.metrics.dropped.inc,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(load_model())
        try:
            yield
        finally:
            task.cancel()
            if state.batcher is not None:
                state.batcher.close()

    return Starlette(routes=_routes(state), lifespan=lifespan), state
