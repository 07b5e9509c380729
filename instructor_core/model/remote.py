"""RemoteEncoder: the encoder protocol over HTTP, against a running ``instructor serve``.

Everything that takes an encoder (``store_ops.ingest``/``search``, the CLI's ``--server``, the
LangChain, LlamaIndex, Chroma and Haystack adapters) takes a :class:`RemoteEncoder` alike: it sends
each side's role (``input_type``) so the server applies its query or document instruction, reads
the model's dimension, instructions, max length and fingerprint from ``/info``, and so a
collection made through a server and one made in-process check against each other by fingerprint.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from instructor_core.errors import InputError, InstructorError
from instructor_core.instructions import Instructions
from instructor_core.model.quantization import Precision, check_precision, quantize_embeddings
from instructor_core.validation import check_instruction, check_pairs, check_positive_int, check_texts

__all__ = ["API_KEY_ENV", "RemoteEncoder", "RemoteEncoderError"]

#: The environment variable a :class:`RemoteEncoder` reads its key from when none is passed.
API_KEY_ENV = "INSTRUCTOR_API_KEY"

#: Statuses worth a bounded wait and another try: a full queue (429), a server loading or draining (503).
_BUSY = (429, 503)


class RemoteEncoderError(InstructorError):
    """The server refused a request or could not be reached; the message is the server's, in one line.

    Attributes:
        status: The HTTP status, or None where no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _ServedSpec:
    """What a collection's layout reads from an encoder's ``spec`` (see ``store_ops.layout_for``)."""

    instructor_stated: bool | None
    include_prompt: bool


class RemoteEncoder:
    """An encoder served by ``instructor serve`` at ``url``: the same calls as
    :class:`~instructor_core.InstructorEncoder`, no model loaded here.

    Args:
        url: The server's base URL (``http://127.0.0.1:8080``).
        api_key: The server's ``--api-key``; None reads ``$INSTRUCTOR_API_KEY``.
        timeout: Seconds for one request (and for the server to turn ready at the start).
        request_size: Texts per request at most (capped by the server's ``max_client_batch_size``).
        concurrency: Requests in flight at once for one long call.
        instructions: The slots in place of the server's (sent as ``instruction``); None keeps the server's.
        truncate_dim: Keep the first N dimensions on every call (sent as ``dimensions``).

    Raises:
        RemoteEncoderError: The server cannot be reached, refuses the key, or is not ready within ``timeout``.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        request_size: int = 256,
        concurrency: int = 4,
        instructions: Instructions | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        import httpx

        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"server must be an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.concurrency = check_positive_int(concurrency, "concurrency")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)
        self._info = self._wait_ready()
        cap = int(self._info.get("max_client_batch_size") or request_size)
        self.request_size = min(check_positive_int(request_size, "request_size"), cap)
        served = self._info["instructions"]
        self._served = Instructions(query=served["query"], document=served["document"])
        self._instructions = instructions if instructions is not None else self._served
        self._truncate_dim: int | None = None
        if truncate_dim is not None:
            self.truncate_dim = truncate_dim
        self.spec = _ServedSpec(self._info.get("instructor"), bool(self._info.get("include_prompt", True)))

    # ------------------------------------------------------------------ transport
    def _wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            info = self._call("GET", "/info", None)
            if info.get("ready"):
                return info
            if time.monotonic() >= deadline:
                raise RemoteEncoderError(f"instructor serve at {self.url} did not turn ready in {self.timeout:g} s")
            time.sleep(0.5)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:  # noqa: ANN401 (JSON)
        import httpx

        delay = 0.25
        for attempt in range(6):
            try:
                response = self._client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                raise RemoteEncoderError(f"cannot reach instructor serve at {self.url}: {exc}") from None
            if response.status_code in _BUSY and attempt < 5:  # a full queue or a loading server: wait, bounded
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code >= 400:
                raise RemoteEncoderError(_message(response), status=response.status_code)
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    # ------------------------------------------------------------------ what the server serves
    @property
    def info(self) -> dict[str, Any]:
        """The server's ``/info`` as read at the start."""
        return dict(self._info)

    @property
    def model_name(self) -> str:
        """The model as the server names it."""
        return str(self._info.get("model_id") or self._info.get("model"))

    @property
    def fingerprint(self) -> str | None:
        """The served model's fingerprint (the same as an in-process encoder of that folder)."""
        value = self._info.get("fingerprint")
        return value if isinstance(value, str) and value else None

    @property
    def model_dimension(self) -> int:
        """Length of the model's own vectors."""
        return int(self._info["model_dimension"])

    @property
    def dimension(self) -> int:
        """Length of each vector: :attr:`truncate_dim` where set, else the server's dimension."""
        return self._truncate_dim or int(self._info["dimension"])

    @property
    def truncate_dim(self) -> int | None:
        """Matryoshka truncation for every call (None: the server's)."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        self._truncate_dim = None if value is None else self.check_truncate_dim(value)

    def check_truncate_dim(self, value: object) -> int:
        """``value`` if it is a valid truncation of the served vectors (else an error naming both numbers)."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"truncate_dim must be a positive int, got {value!r}")
        if value > self.model_dimension:
            raise InputError(f"truncate_dim={value} is above the served model's dimension {self.model_dimension}")
        return value

    @property
    def max_length(self) -> int:
        """The served model's token limit for instruction + text."""
        return int(self._info["max_input_length"])

    @property
    def instructions(self) -> Instructions:
        """The query and document instructions this encoder sends (the server's unless replaced)."""
        return self._instructions

    @instructions.setter
    def instructions(self, value: Instructions) -> None:
        if not isinstance(value, Instructions):
            raise InputError(f"instructions must be an Instructions, got {type(value).__name__}")
        self._instructions = value

    @property
    def prompts(self) -> dict[str, str]:
        """The served model's named prompts, with ``query`` and ``document`` as this encoder's slots."""
        named = dict(self._info.get("prompts") or {})
        return {**named, "query": self._instructions.query, "document": self._instructions.document}

    # ------------------------------------------------------------------ encoding
    def encode_queries(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Queries under the query slot (``input_type: query``), or ``instruction``, or ``prompt_name``;
        the arguments as :meth:`InstructorEncoder.encode_queries` (``batch_size`` is the server's to choose)."""
        items = check_texts(texts, "texts")
        role = self._role("query", instruction, prompt_name)
        return self._encode(items, role, normalize, show_progress, truncate_dim, precision, calibration_embeddings)

    def encode_documents(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Documents under the document slot (``input_type: document``); see :meth:`encode_queries`."""
        items = check_texts(texts, "texts")
        role = self._role("document", instruction, prompt_name)
        return self._encode(items, role, normalize, show_progress, truncate_dim, precision, calibration_embeddings)

    def encode(
        self,
        inputs: Iterable[tuple[str, str]] | Iterable[str],
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """(instruction, text) pairs, any mix (one request per instruction), or plain texts under
        ``prompt_name`` (else no instruction); see :meth:`InstructorEncoder.encode`."""
        items = list(inputs) if not isinstance(inputs, (str, bytes)) else [inputs]
        if items and all(isinstance(item, str) for item in items):
            texts = check_texts(items, "texts")
            role = {"prompt_name": prompt_name} if prompt_name is not None else {"instruction": ""}
            return self._encode(texts, role, normalize, show_progress, truncate_dim, precision, calibration_embeddings)
        if prompt_name is not None:
            raise InputError("prompt_name applies to plain texts; (instruction, text) pairs carry their own")
        pairs = check_pairs(items)
        result = np.zeros((len(pairs), truncate_dim or self.dimension), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for index, (instruction, _) in enumerate(pairs):
            groups.setdefault(instruction, []).append(index)
        for instruction, rows in groups.items():
            result[rows] = self._encode(
                [pairs[i][1] for i in rows], {"instruction": instruction}, normalize, show_progress, truncate_dim,
                "float32", None,
            )  # fmt: skip
        if check_precision(precision) == "float32":
            return result
        return quantize_embeddings(result, precision, calibration_embeddings=calibration_embeddings)

    def _role(self, side: str, instruction: str | None, prompt_name: str | None) -> dict[str, Any]:
        if instruction is not None and prompt_name is not None:
            raise InputError("pass instruction or prompt_name, not both")
        if prompt_name is not None:
            return {"input_type": side, "prompt_name": prompt_name}
        if instruction is not None:
            return {"input_type": side, "instruction": check_instruction(instruction)}
        slot = self._instructions.query if side == "query" else self._instructions.document
        served = self._served.query if side == "query" else self._served.document
        return {"input_type": side} if slot == served else {"input_type": side, "instruction": slot}

    def _encode(
        self,
        texts: Sequence[str],
        role: Mapping[str, Any],
        normalize: bool,
        show_progress: bool,
        truncate_dim: int | None,
        precision: Precision,
        calibration: np.ndarray | None,
    ) -> np.ndarray:
        precision = check_precision(precision)
        dim = self.dimension if truncate_dim is None else self.check_truncate_dim(truncate_dim)
        result = np.zeros((len(texts), dim), dtype=np.float32)
        if texts:
            body = {**role, "encoding_format": "base64", "normalize": bool(normalize)}
            if dim != int(self._info["dimension"]):
                body["dimensions"] = dim
            starts = range(0, len(texts), self.request_size)

            def one(start: int) -> None:
                chunk = list(texts[start : start + self.request_size])
                answer = self._call("POST", "/v1/embeddings", {**body, "input": chunk})
                for row in answer["data"]:
                    result[start + int(row["index"])] = np.frombuffer(base64.b64decode(row["embedding"]), "<f4")

            if len(starts) == 1:
                one(0)
            else:
                with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
                    work = [pool.submit(one, start) for start in starts]
                    _drain(work, show_progress, len(starts))
        if precision == "float32":
            return result
        return quantize_embeddings(result, precision, calibration_embeddings=calibration)

    def __repr__(self) -> str:
        return f"RemoteEncoder({self.url!r}, model={self.model_name!r}, dimension={self.dimension})"


def _drain(work: list[concurrent.futures.Future[None]], show_progress: bool, total: int) -> None:
    if show_progress:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc="Encoding (server)", unit="request") as bar:
            for future in concurrent.futures.as_completed(work):
                future.result()
                bar.update(1)
        return
    for future in work:
        future.result()


def _message(response: Any) -> str:  # noqa: ANN401 (an httpx.Response)
    try:
        error = response.json()["error"]
        text = str(error["message"])
    except Exception:  # not the server's envelope (a proxy's page): its status and first line
        text = (response.text or "").strip().splitlines()[0][:300] if response.text else ""
    return f"instructor serve answered {response.status_code}: {text}"
