"""Instructions: the text that says what an embedding is for.

INSTRUCTOR (Su et al., 2023) embeds ``instruction + text``. The paper's template is
"Represent the {domain} {text type} for {task objective}: ". This module holds the pair of
instructions an encoder uses by default (one for queries, one for documents) and a few presets.
"""

from __future__ import annotations

from dataclasses import dataclass

from instructor_core.errors import InputError, InputTypeError

__all__ = [
    "INSTRUCTOR_RETRIEVAL",
    "Instructions",
    "NO_INSTRUCTIONS",
    "template",
]


@dataclass(frozen=True)
class Instructions:
    """The instruction prepended to queries and the one prepended to documents.

    Attributes:
        query: Prepended to every query, e.g. "Represent the question for retrieving supporting
            documents: ". Empty for a model trained without instructions.
        document: Prepended to every document, e.g. "Represent the document for retrieval: ".
    """

    query: str = ""
    document: str = ""

    def __post_init__(self) -> None:
        for field in ("query", "document"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise InputTypeError(
                    f"Instructions.{field} must be a str (use '' for none), got {type(value).__name__}: {value!r}"
                )

    def replace(self, *, query: str | None = None, document: str | None = None) -> Instructions:
        """Return a copy with the given instructions replaced; ``None`` keeps the current one."""
        return Instructions(
            query=self.query if query is None else query,
            document=self.document if document is None else document,
        )


NO_INSTRUCTIONS = Instructions()
"""Empty instructions on both sides: the text alone, for models trained without instructions."""

INSTRUCTOR_RETRIEVAL = Instructions(
    query="Represent the question for retrieving supporting documents: ",
    document="Represent the document for retrieval: ",
)
"""The retrieval instructions the INSTRUCTOR paper and model cards use by default."""


def template(text_type: str, objective: str, domain: str = "") -> str:
    """Build an instruction with the paper's template.

    ``template("claim", "retrieving supporting abstracts", domain="scientific")`` gives
    "Represent the scientific claim for retrieving supporting abstracts: ".

    Args:
        text_type: What the text is: "question", "document", "sentence", "claim", ...
        objective: What the embedding is for: "retrieval", "classification", ...
        domain: Optional domain: "Wikipedia", "financial", "scientific", ...

    Returns:
        The instruction, ending in ": " so that the text follows it directly.
    """
    for name, value in (("text_type", text_type), ("objective", objective), ("domain", domain)):
        if not isinstance(value, str):
            raise InputTypeError(f"template(): {name} must be a str, got {type(value).__name__}")
    if not text_type.strip() or not objective.strip():
        raise InputError("template(): text_type and objective must be non-empty")
    subject = f"{domain} {text_type}" if domain.strip() else text_type
    return f"Represent the {subject} for {objective}: "
