"""Reading a request body into an :class:`EmbedRequest`: the OpenAI and TEI shapes, checked item by item.

Every refusal is an :class:`~instructor_serve.errors.ApiError` naming the field and, where one input
is at fault, its index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from instructor_serve.errors import ApiError
from instructor_serve.settings import InputType, ServeSettings

__all__ = ["EmbedRequest", "parse_json", "read_openai", "read_sparse", "read_tei"]

EncodingFormat = Literal["float", "base64"]

_OPENAI_FIELDS = (
    "input", "model", "dimensions", "encoding_format", "user", "input_type", "prompt_name", "instruction",
    "truncate", "normalize",
)  # fmt: skip
_TEI_FIELDS = ("inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions", "input_type",
               "instruction")  # fmt: skip
_INPUT_TYPES = {"query": "query", "document": "document", "passage": "document"}
_TOKEN_IDS = (
    "input is token ids; this server embeds text (the instruction is joined to it before tokenizing). "
    "LangChain's OpenAIEmbeddings sends token ids unless check_embedding_ctx_length=False: set it"
)


@dataclass(frozen=True)
class EmbedRequest:
    """One request's inputs and what it asks of them.

    Attributes:
        texts: The inputs.
        input_type: Whose slot applies: ``query`` or ``document``.
        instruction: An instruction in place of the slot's, if given.
        prompt_name: One of the model's named prompts in place of the slot's, if given.
        dimensions: Keep the first N dimensions, then normalize (None: the server's dimension).
        normalize: L2-normalize the vectors.
        truncate: Cut inputs past the max length (else refuse them).
        encoding_format: ``float`` lists or ``base64`` of little-endian float32.
    """

    texts: list[str]
    input_type: InputType
    instruction: str | None = None
    prompt_name: str | None = None
    dimensions: int | None = None
    normalize: bool = True
    truncate: bool = True
    encoding_format: EncodingFormat = "float"


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, else a 422 saying what it is."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"the body must be a JSON object, got a JSON {type(data).__name__}", code="invalid_json")
    return data


def _unknown(data: dict[str, Any], known: tuple[str, ...]) -> None:
    extra = [key for key in data if key not in known]
    if extra:
        raise ApiError(
            422,
            f"unknown field {extra[0]!r}; this route takes {', '.join(known)}",
            param=extra[0],
            code="unknown_field",
        )


def _texts(value: object, field: str, settings: ServeSettings) -> list[str]:
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise ApiError(422, f"{field} must be a string or a list of strings, got {_kind(value)}", param=field)
    if not items:
        raise ApiError(422, f"{field} is an empty list: send at least one text", param=field, code="empty_input")
    if all(isinstance(x, int) and not isinstance(x, bool) for x in items) or all(
        isinstance(x, list) and all(isinstance(t, int) for t in x) for x in items
    ):
        raise ApiError(422, _TOKEN_IDS, param=field, code="token_ids_not_supported")
    if len(items) > settings.max_client_batch_size:
        raise ApiError(
            413,
            f"{field} holds {len(items)} texts; this server takes at most {settings.max_client_batch_size} per "
            "request (--max-client-batch-size): send them in smaller requests",
            param=field,
            code="too_many_inputs",
        )
    for index, item in enumerate(items):
        where = f"{field}[{index}]" if isinstance(value, list) else field
        if not isinstance(item, str):
            raise ApiError(422, f"{where} must be a string, got {_kind(item)}", param=where, code="invalid_input")
        if not item:
            raise ApiError(422, f"{where} is an empty string: nothing to embed", param=where, code="empty_input")
        if len(item) > settings.max_input_chars:
            raise ApiError(
                413,
                f"{where} has {len(item)} characters; this server takes at most {settings.max_input_chars} "
                "(--max-input-chars)",
                param=where,
                code="input_too_large",
            )
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in item):
            raise ApiError(422, f"{where} holds a lone surrogate (not a Unicode character)", param=where)
    return [str(item) for item in items]


def _kind(value: object) -> str:
    return (
        "null"
        if value is None
        else {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), f"a {type(value).__name__}")
    )


def _optional_str(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"{field} must be a string, got {_kind(value)}", param=field)
    return value


def _bool(data: dict[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"{field} must be true or false, got {_kind(value)}", param=field)
    return value


def _dimensions(data: dict[str, Any]) -> int | None:
    value = data.get("dimensions")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(422, f"dimensions must be a positive integer, got {value!r}", param="dimensions")
    return value


def _role(
    data: dict[str, Any], settings: ServeSettings, default: InputType | None = None
) -> tuple[InputType, str | None, str | None]:
    raw = data.get("input_type")
    if raw is None:
        input_type: InputType = default or settings.default_input_type
    elif not isinstance(raw, str) or raw.lower() not in _INPUT_TYPES:
        raise ApiError(422, f"input_type must be 'query', 'document' or 'passage', got {raw!r}", param="input_type")
    else:
        input_type = "query" if _INPUT_TYPES[raw.lower()] == "query" else "document"
    instruction = _optional_str(data, "instruction")
    prompt_name = _optional_str(data, "prompt_name")
    if instruction is not None and prompt_name is not None:
        raise ApiError(422, "send instruction or prompt_name, not both", param="prompt_name")
    return input_type, instruction, prompt_name


def _inputs(data: dict[str, Any], field: str, settings: ServeSettings) -> list[str]:
    """The texts of the body's ``field`` (``input`` or ``inputs``), each checked, or a 422/413 naming it."""
    if field not in data:
        raise ApiError(422, f"{field} is missing: send a string or a list of strings", param=field)
    return _texts(data[field], field, settings)


def _embed_request(
    data: dict[str, Any],
    settings: ServeSettings,
    default: InputType | None,
    texts: list[str],
    encoding_format: EncodingFormat = "float",
) -> EmbedRequest:
    """What the OpenAI and TEI bodies share: the role, ``dimensions``, ``normalize``, ``truncate``."""
    input_type, instruction, prompt_name = _role(data, settings, default)
    return EmbedRequest(
        texts=texts,
        input_type=input_type,
        instruction=instruction,
        prompt_name=prompt_name,
        dimensions=_dimensions(data),
        normalize=_bool(data, "normalize", True),
        truncate=_bool(data, "truncate", settings.auto_truncate),
        encoding_format=encoding_format,
    )


def read_openai(data: dict[str, Any], settings: ServeSettings, default: InputType | None = None) -> EmbedRequest:
    """An OpenAI ``/v1/embeddings`` body: ``input``, ``model``, ``dimensions``, ``encoding_format``,
    ``user``, and the role in ``input_type`` / ``prompt_name`` / ``instruction`` (``extra_body``);
    ``default`` is the role of the route (``/query/v1/embeddings``) where the body names none."""
    _unknown(data, _OPENAI_FIELDS)
    texts = _inputs(data, "input", settings)
    for name in ("model", "user"):
        _optional_str(data, name)
    raw = data.get("encoding_format") or "float"
    if raw not in ("float", "base64"):
        raise ApiError(422, f"encoding_format must be 'float' or 'base64', got {raw!r}", param="encoding_format")
    return _embed_request(data, settings, default, texts, "base64" if raw == "base64" else "float")


def read_tei(data: dict[str, Any], settings: ServeSettings, default: InputType | None = None) -> EmbedRequest:
    """A TEI ``/embed`` body: ``inputs``, ``normalize``, ``truncate``, ``truncation_direction``,
    ``prompt_name``, ``dimensions`` (and this server's ``input_type`` / ``instruction``)."""
    _unknown(data, _TEI_FIELDS)
    texts = _inputs(data, "inputs", settings)
    direction = data.get("truncation_direction")
    if direction is not None and direction not in ("Right", "right"):
        raise ApiError(
            422, f"truncation_direction {direction!r}: this server cuts on the right only", param="truncation_direction"
        )
    return _embed_request(data, settings, default, texts)


def read_sparse(data: dict[str, Any], settings: ServeSettings) -> tuple[list[str], InputType]:
    """A TEI ``/embed_sparse`` body: ``inputs`` (and ``input_type``: BM25 weighs query terms 1)."""
    _unknown(data, ("inputs", "truncate", "truncation_direction", "input_type"))
    texts = _inputs(data, "inputs", settings)
    input_type, _, _ = _role({"input_type": data.get("input_type")}, settings)
    return texts, input_type
