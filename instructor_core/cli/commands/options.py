"""Options that several subcommands share: the model to load, batch sizes, positive integers.

Every subcommand that loads a model adds the same ``--model``, ``--device``, ``--max-length``,
``--backend`` and ``--dtype`` through :func:`add_model_options` and loads it with
:func:`load_encoder`, so the options read and behave the same everywhere.

Batch sizes have two meanings and two names across the CLI:

- ``--batch-size N``: texts per forward pass of the model (``embed``, ``eval``, ``mine-negatives``,
  ``train``'s evaluations), :func:`add_batch_size_option`;
- ``--write-batch-size N``: records per write to a vector store (``ingest``),
  :func:`add_write_batch_size_option`.

``train --train-batch-size`` (rows per optimizer step) is a third quantity with its own name.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from instructor_core.errors import InputError
from instructor_core.model.backends import BACKENDS
from instructor_core.model.load_options import DTYPES, LoadOptions

if TYPE_CHECKING:
    from instructor_core.instructions import Instructions
    from instructor_core.model.encoder import InstructorEncoder
    from instructor_core.model.remote import RemoteEncoder

__all__ = [
    "DTYPES",
    "add_batch_size_option",
    "add_model_options",
    "add_prompt_name_option",
    "prompt_or_instruction",
    "add_write_batch_size_option",
    "load_encoder",
    "load_options",
    "positive_int",
]


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts that must be at least 1 (batch sizes, ``-k``, epochs).

    Raises:
        argparse.ArgumentTypeError: On text that is not an integer or is below 1; argparse turns it
            into exit code 2 with the option's name.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    required_model: bool,
    inference: bool = True,
    model_help: str | None = None,
    server: bool = False,
) -> None:
    """Add ``--model`` and the loading options made from :class:`LoadOptions`' fields: ``--device``,
    ``--instructor/--no-instructor``, ``--max-length`` and (for inference) ``--backend``, ``--dtype``
    and ``--dim`` (``truncate_dim``).

    Args:
        parser: The subcommand's parser.
        required_model: Whether ``--model`` must be given (``search`` takes the collection's model
            when it is not).
        inference: Add ``--backend`` and ``--dtype``; False for ``train``, which always runs the
            torch model in float32 (``--bf16`` is its autocast switch).
        model_help: Help text for ``--model`` in place of the default.
        server: Add ``--server URL``: embed through a running ``instructor serve`` instead of loading a
            model (``--model`` is then optional even where ``required_model`` says otherwise).
    """
    if server:
        parser.add_argument(
            "--server",
            default=os.environ.get("INSTRUCTOR_SERVER") or None,
            metavar="URL",
            help="embed through a running 'instructor serve' at URL (its model, instructions and fingerprint) "
            "instead of loading a model here; the key from $INSTRUCTOR_API_KEY (default: $INSTRUCTOR_SERVER)",
        )
    parser.add_argument(
        "--model",
        required=required_model and not server,
        default=None,
        help=model_help or "model folder or Hugging Face hub id, e.g. hkunlp/instructor-large",
    )
    for option in fields(LoadOptions):
        if not option.metadata.get("cli") or (not inference and option.name in _INFERENCE_ONLY):
            continue
        flag = option.metadata.get("flag") or "--" + option.name.replace("_", "-")
        extra: dict[str, Any] = {"dest": option.name}
        if option.name == "instructor":
            extra["action"] = argparse.BooleanOptionalAction
        elif option.name in ("max_length", "truncate_dim"):
            extra["type"] = positive_int
        elif option.name == "backend":
            extra["choices"] = BACKENDS
        elif option.name == "dtype":
            extra["choices"] = DTYPES
        parser.add_argument(flag, default=option.default, help=option.metadata["help"], **extra)


#: Loading options only inference commands take (``train`` runs the torch model in float32, whole).
_INFERENCE_ONLY = ("backend", "dtype", "truncate_dim")


def load_options(args: argparse.Namespace) -> LoadOptions:
    """The :class:`LoadOptions` that the parsed ``args`` name (the options :func:`add_model_options` added)."""
    given = {name: getattr(args, name) for name in LoadOptions.names() if hasattr(args, name)}
    return LoadOptions.from_mapping(given, where="the command line")


def add_prompt_name_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--prompt-name NAME``: one of the model's named prompts in place of the instruction."""
    parser.add_argument(
        "--prompt-name",
        default=None,
        metavar="NAME",
        help="one of the model's named prompts (its config_sentence_transformers.json, e.g. EmbeddingGemma's "
        "STS or e5-mistral's web_search_query) in place of the instruction",
    )


def prompt_or_instruction(
    encoder: InstructorEncoder, prompt_name: str | None, instruction: str | None, flag: str
) -> str | None:
    """The text of the prompt ``--prompt-name`` names, else ``instruction`` (None: the model's own).

    Raises:
        InputError: Both given.
        UnknownPromptError: A name the model does not have (listing the ones it has).
    """
    if prompt_name is None:
        return instruction
    if instruction is not None:
        raise InputError(f"pass --prompt-name or {flag}, not both")
    from instructor_core.model.prompts import resolve_prompt

    return resolve_prompt(encoder.prompts, prompt_name)


def add_batch_size_option(parser: argparse.ArgumentParser, *, default: int = 32) -> None:
    """Add ``--batch-size``: texts per forward pass of the model."""
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=default,
        help=f"texts per forward pass of the model (default: {default})",
    )


class _DeprecatedAlias(argparse.Action):
    """Stores like the option it stands for and says once, on stderr, which spelling to use."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **rest: Any) -> None:  # noqa: ANN401 (argparse.Action's own keywords)
        super().__init__(option_strings, dest, **rest)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,  # noqa: ANN401 (argparse passes whatever the option's type made)
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog}: note: {option_string} is now spelled {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_write_batch_size_option(parser: argparse.ArgumentParser, *, default: int | None = None) -> None:
    """Add ``--write-batch-size``: records per write to a vector store, and ``--batch-size``, its
    spelling before the split (with a note on stderr; ``ingest`` has no ``--batch-size`` of its own).

    Args:
        parser: The subcommand's parser (``ingest``).
        default: None leaves the choice to the store's own default.
    """
    default_text = "the store's default" if default is None else str(default)
    parser.add_argument(
        "--write-batch-size",
        type=positive_int,
        default=default,
        help=f"records per write to the store (default: {default_text})",
    )
    parser.add_argument(
        "--batch-size",
        dest="write_batch_size",
        type=positive_int,
        action=_DeprecatedAlias,
        new="--write-batch-size",
        help="the old spelling of --write-batch-size",
    )


def load_encoder(args: argparse.Namespace, instructions: Instructions | None = None) -> InstructorEncoder:
    """Load ``args.model`` with the options :func:`add_model_options` added.

    Args:
        args: The parsed arguments; ``backend`` and ``dtype`` may be absent (``train``).
        instructions: Default instructions in place of the model's own; None keeps the model's.

    Raises:
        ValueError: When ``args.model`` is None (a caller that makes ``--model`` optional resolves
            it first).
        ModelLoadError: The folder cannot be read (a broken config, truncated or corrupt weights).
    """
    from instructor_core.model.encoder import InstructorEncoder

    if getattr(args, "server", None):
        return _remote_encoder(args, instructions)  # type: ignore[return-value]  # the same encoder protocol
    if args.model is None:
        raise InputError("no model given: pass --model" + (" or --server URL" if hasattr(args, "server") else ""))
    # a folder it cannot read is a ModelFolderError or ModelLoadError from the loader itself (one line)
    return InstructorEncoder.from_pretrained(args.model, instructions, options=load_options(args))


def _remote_encoder(args: argparse.Namespace, instructions: Instructions | None) -> RemoteEncoder:
    """The encoder of ``--server URL``; loading options, which the server already chose, are refused."""
    from instructor_core.model.remote import RemoteEncoder

    given = [
        "--" + name.replace("_", "-")
        for name, value in load_options(args).changed().items()
        if name != "truncate_dim" and value is not None
    ]
    if given:
        raise InputError(
            f"{', '.join(given)} set how a model is loaded here, and --server {args.server} serves one already "
            "loaded: drop them (or pass them to instructor serve)"
        )
    return RemoteEncoder(args.server, instructions=instructions, truncate_dim=getattr(args, "truncate_dim", None))
