"""Failures a request can meet, each answered in the OpenAI error envelope."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "envelope"]


class ApiError(Exception):
    """An expected refusal: an HTTP status and the OpenAI envelope's fields.

    Attributes:
        status: The HTTP status (401, 413, 422, 429, 503, ...).
        message: One sentence naming the problem (the input's index where one input is at fault).
        type: The OpenAI error type (``invalid_request_error``, ``rate_limit_error``, ...).
        param: The request field at fault, if one is.
        code: A short machine-readable code.
    """

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
        code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The response body."""
        return envelope(self.message, type=self.type, param=self.param, code=self.code)


def envelope(message: str, *, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, the OpenAI API's error shape."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
