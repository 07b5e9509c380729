"""The server's limits and defaults, one frozen object that the CLI flags are made from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from instructor_core.errors import InputError

__all__ = ["API_KEY_ENV", "InputType", "ServeSettings", "is_loopback"]

#: The environment variable ``--api-key`` falls back to (a key on the command line shows in ``ps``).
API_KEY_ENV = "INSTRUCTOR_API_KEY"

#: The roles a request can name: ``passage`` is read as ``document`` (e5's and Cohere's word).
InputType = Literal["query", "document"]


def _flag(text: str, **extra: Any) -> dict[str, Any]:  # noqa: ANN401 (argparse keywords)
    return {"help": text, **extra}


@dataclass(frozen=True)
class ServeSettings:
    """How ``instructor serve`` listens, batches and refuses.

    Every field is a flag of the same name (``max_batch_tokens`` -> ``--max-batch-tokens``).

    Attributes:
        host: Address to bind; loopback unless said otherwise.
        port: TCP port.
        api_key: A key every route but ``/health`` asks for (``Authorization: Bearer KEY``); None: no key.
        model_name: The name the responses carry in ``model`` (default: the model as given).
        default_input_type: The role of a request that names none.
        max_batch_tokens: Tokens (of the inputs, with their instructions) in one cut of the queue.
        max_batch_size: Inputs in one cut of the queue (the request cap).
        max_queue_inputs: Inputs waiting at most; a request that would pass it is answered 429.
        max_client_batch_size: Inputs in one request at most (413 above).
        max_input_chars: Characters in one input at most (413 above).
        max_body_bytes: Bytes in one request body at most (413 above, before it is read whole).
        auto_truncate: Cut inputs longer than the model's max length (as the in-process encoder
            does); a request may say ``truncate: false`` to have them refused instead.
        drain_seconds: After SIGTERM, how long accepted work may take before the process ends.
    """

    host: str = field(default="127.0.0.1", metadata=_flag("address to bind (default: 127.0.0.1, this machine only)"))
    port: int = field(default=8080, metadata=_flag("TCP port (default: 8080)"))
    api_key: str | None = field(
        default=None,
        metadata=_flag(f"ask every request but /health for this key (Bearer); default: ${API_KEY_ENV}, else none"),
    )
    model_name: str | None = field(default=None, metadata=_flag("name the responses carry (default: --model)"))
    default_input_type: InputType = field(
        default="document",
        metadata=_flag("role of a request that names none (default: document)", choices=("query", "document")),
    )
    max_batch_tokens: int = field(default=16384, metadata=_flag("tokens in one cut of the queue (default: 16384)"))
    max_batch_size: int = field(default=256, metadata=_flag("inputs in one cut of the queue (default: 256)"))
    max_queue_inputs: int = field(
        default=10000, metadata=_flag("inputs waiting at most; past it a request is answered 429 (default: 10000)")
    )
    max_client_batch_size: int = field(
        default=2048, metadata=_flag("inputs in one request at most, else 413 (default: 2048)")
    )
    max_input_chars: int = field(
        default=100_000, metadata=_flag("characters in one input at most, else 413 (default: 100000)")
    )
    max_body_bytes: int = field(
        default=16 * 1024 * 1024, metadata=_flag("bytes in one request body at most, else 413 (default: 16 MiB)")
    )
    auto_truncate: bool = field(
        default=True,
        metadata=_flag("cut inputs past the model's max length, as the in-process encoder does (default: on)"),
    )
    drain_seconds: float = field(
        default=30.0, metadata=_flag("after SIGTERM, seconds accepted work may take (default: 30)")
    )

    def __post_init__(self) -> None:
        for name in ("port", "max_batch_tokens", "max_batch_size", "max_queue_inputs", "max_client_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "port" else 1):
                raise InputError(f"{name} must be a positive int, got {value!r}")
        for name in ("max_input_chars", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if self.max_client_batch_size > self.max_queue_inputs:
            raise InputError(
                f"max_client_batch_size={self.max_client_batch_size} is above max_queue_inputs="
                f"{self.max_queue_inputs}: such a request could never be queued; lower the one or raise the other"
            )
        if self.default_input_type not in ("query", "document"):
            raise InputError(f"default_input_type must be 'query' or 'document', got {self.default_input_type!r}")
        if self.drain_seconds < 0:
            raise InputError(f"drain_seconds must be >= 0, got {self.drain_seconds!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in declaration order (the CLI's flags)."""
        return tuple(f.name for f in fields(cls))


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
