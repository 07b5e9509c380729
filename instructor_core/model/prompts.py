"""Named prompts, as sentence-transformers keeps them: ``{"query": ..., "document": ..., "STS": ...}``.

A model folder's ``config_sentence_transformers.json`` may name any number of prompts (EmbeddingGemma
ships 14, e5-mistral only task-named ones) and a ``default_prompt_name``. The encoder's two slots
keep their meaning: the query instruction is the ``query`` prompt, the document instruction the
``document`` prompt, else ``passage``, else ``corpus`` (sentence-transformers' order).
"""

from __future__ import annotations

from collections.abc import Mapping

from instructor_core.errors import InputTypeError, InstructorError
from instructor_core.instructions import Instructions

__all__ = ["DOCUMENT_PROMPT_NAMES", "UnknownPromptError", "resolve_prompt", "slots_from_prompts"]

#: The prompt names that fill the document slot, in sentence-transformers' order (``text``: older folders).
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus", "text")


class UnknownPromptError(InstructorError, KeyError):
    """A prompt name the model does not have; the message lists the ones it has."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def resolve_prompt(prompts: Mapping[str, str], prompt_name: str) -> str:
    """The text of the prompt ``prompt_name``.

    Raises:
        UnknownPromptError: Naming it and listing the known names.
    """
    if not isinstance(prompt_name, str):
        raise InputTypeError(f"prompt_name must be a str, got {type(prompt_name).__name__}")
    if prompt_name not in prompts:
        known = ", ".join(repr(name) for name in prompts) or "none"
        raise UnknownPromptError(f"prompt_name {prompt_name!r} is not one of this model's prompts: {known}")
    return prompts[prompt_name]


def slots_from_prompts(prompts: Mapping[str, str]) -> Instructions | None:
    """The query and document instructions that named prompts give, or None where they name neither."""
    query = prompts.get("query")
    document = next((prompts[key] for key in DOCUMENT_PROMPT_NAMES if key in prompts), None)
    if query is None and document is None:
        return None
    return Instructions(query=query or "", document=document or "")
