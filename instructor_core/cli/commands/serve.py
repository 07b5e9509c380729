"""``instructor serve``: one loaded model behind an HTTP embedding server (OpenAI and TEI routes).

The server itself is the ``instructor_serve`` package (the ``serve`` extra); this module only adds
the parser: the model's loading options (every :class:`~instructor_core.LoadOptions` field), the
instruction slots, and the server's limits (every :class:`instructor_serve.ServeSettings` field).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from instructor_core.cli.commands.options import add_model_options, load_encoder, positive_int
from instructor_core.errors import InputError, install_hint
from instructor_core.model.load_options import LoadOptions

__all__ = ["RAY_FLAGS", "model_label", "register", "settings_and_loader"]

#: LoadOptions fields ``add_model_options`` leaves to the Python API; ``serve`` takes them as flags too.
_MORE_LOADING = ("trust_remote_code", "revision", "cache_dir", "backend_cache_dir", "attn_implementation",
                 "default_prompt_name")  # fmt: skip


def _prompt(text: str) -> tuple[str, str]:
    name, sep, prompt = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=TEXT, got {text!r}")
    return name, prompt


def settings_and_loader(args: argparse.Namespace) -> tuple[Any, Callable[[], Any]]:
    """The server's settings and the model's loader from parsed ``serve`` arguments (shared by the
    local server and the Ray Serve deployment, whose app builder parses a Serve config's ``args``
    with this same parser).

    Returns:
        An :class:`instructor_serve.ServeSettings` and a function that loads the encoder (it
        pickles: Ray Serve ships it to every replica).
    """
    try:
        from instructor_serve import API_KEY_ENV, ServeSettings
    except ImportError as exc:
        raise ImportError(f"instructor serve needs the serve extra: {install_hint('serve')} ({exc})") from exc

    given = {name: getattr(args, name) for name in ServeSettings.names()}
    if given["api_key"] is None:
        given["api_key"] = os.environ.get(API_KEY_ENV) or None
    settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})
    if args.prompt:
        args.prompts = tuple(args.prompt)

    def load() -> Any:  # noqa: ANN401 (an InstructorEncoder)
        encoder = load_encoder(args)
        encoder.instructions = encoder.instructions.replace(
            query=args.query_instruction, document=args.document_instruction
        )  # None keeps the model's slot
        return encoder

    return settings, load


def _serve(args: argparse.Namespace) -> int:
    if args.engine != "ray":
        given = [flag for flag, dest in RAY_FLAGS.items() if getattr(args, dest) is not None]
        if given:
            raise InputError(f"{given[0]} applies to --engine ray only")
    settings, load = settings_and_loader(args)
    if args.engine == "ray":
        try:
            from instructor_serve.ray_serve import serve_on_ray
        except ImportError as exc:
            raise ImportError(f"--engine ray needs Ray Serve: {install_hint('serve-ray')} ({exc})") from exc

        return serve_on_ray(args, settings, load, replicas=args.replicas)
    from instructor_serve import serve

    return serve(settings, load, model_label=model_label(args.model), log_level=args.log_level)


def model_label(model: str) -> str:
    """A local folder as an absolute path (what a collection ingested through the server records, so a
    search from another folder loads it), a hub id as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


#: The flags only ``--engine ray`` reads (flag -> dest); the local engine refuses them.
RAY_FLAGS = {
    "--replicas": "replicas",
    "--ray-address": "ray_address",
    "--min-replicas": "min_replicas",
    "--max-replicas": "max_replicas",
    "--target-ongoing-requests": "target_ongoing_requests",
    "--max-ongoing-requests": "max_ongoing_requests",
    "--max-queued-requests": "max_queued_requests",
    "--replica-cpus": "replica_cpus",
    "--replica-gpus": "replica_gpus",
    "--max-replicas-per-node": "max_replicas_per_node",
    "--proxy-location": "proxy_location",
}


def _add_ray_options(parser: argparse.ArgumentParser) -> None:
    """The flags of ``--engine ray``: where the cluster is, replicas, autoscaling, resources."""
    group = parser.add_argument_group("Ray Serve (--engine ray)")
    group.add_argument("--replicas", type=positive_int, default=None,
                       help="replicas (default: 1); with --max-replicas, the replicas to start with")  # fmt: skip
    group.add_argument(
        "--ray-address", default=None,
        help="the Ray cluster to deploy on (an address, or 'auto' for the one this machine runs; default: start a "
        "local Ray instance)",
    )  # fmt: skip
    group.add_argument("--min-replicas", type=_non_negative_int, default=None,
                       help="autoscaling: fewest replicas (default: 1; needs --max-replicas)")  # fmt: skip
    group.add_argument(
        "--max-replicas",
        type=positive_int,
        default=None,
        help="autoscaling on: most replicas Serve scales to (default: off, --replicas fixed)",
    )
    group.add_argument(
        "--target-ongoing-requests", type=_positive_float, default=None,
        help="autoscaling: ongoing requests per replica Serve scales to keep (default: a quarter of "
        "--max-ongoing-requests)",
    )  # fmt: skip
    group.add_argument(
        "--max-ongoing-requests", type=positive_int, default=None,
        help="requests one replica holds at once, so that its batches fill (default: --max-batch-size, 256)",
    )  # fmt: skip
    group.add_argument(
        "--max-queued-requests", type=int, default=None,
        help="requests each Serve proxy holds waiting for a replica; past it a request is answered 429 (default: "
        "1024; -1: no bound)",
    )  # fmt: skip
    group.add_argument("--replica-cpus", type=_non_negative_float, default=None,
                       help="CPUs each replica reserves (default: 1)")  # fmt: skip
    group.add_argument("--replica-gpus", type=_non_negative_float, default=None,
                       help="GPUs each replica reserves (default: 0)")  # fmt: skip
    group.add_argument("--max-replicas-per-node", type=positive_int, default=None,
                       help="replicas one node runs at most (default: no bound)")  # fmt: skip
    group.add_argument(
        "--proxy-location", choices=("EveryNode", "HeadOnly", "Disabled"), default=None,
        help="where Serve runs its HTTP proxy, bound at --host/--port (default: EveryNode, each node with a replica)",
    )  # fmt: skip


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """The server's flags, one per ServeSettings field (declared here as plain flags: the package
    that defines the dataclass is an optional extra and the parser must build without it)."""
    parser.add_argument("--host", default=None, help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: 8080)")
    parser.add_argument(
        "--api-key", default=None,
        help="ask every request but /health for this key (Authorization: Bearer KEY); default: $INSTRUCTOR_API_KEY",
    )  # fmt: skip
    parser.add_argument("--model-name", default=None, help="name the responses carry in 'model' (default: --model)")
    parser.add_argument(
        "--default-input-type", choices=("query", "document"), default=None,
        help="role of a request that names no input_type (default: document)",
    )  # fmt: skip
    parser.add_argument(
        "--max-batch-tokens",
        type=positive_int,
        default=None,
        help="tokens in one cut of the queue, and padded tokens in one forward pass (default: 16384)",
    )
    parser.add_argument(
        "--max-batch-size", type=positive_int, default=None, help="inputs in one cut of the queue (default: 256)"
    )
    parser.add_argument(
        "--max-queue-inputs",
        type=positive_int,
        default=None,
        help="inputs waiting at most; past it a request is answered 429 at once (default: 10000)",
    )
    parser.add_argument(
        "--max-client-batch-size",
        type=positive_int,
        default=None,
        help="inputs in one request at most, else 413 (default: 2048)",
    )
    parser.add_argument(
        "--max-input-chars",
        type=positive_int,
        default=None,
        help="characters in one input at most, else 413 (default: 100000)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=None,
        help="bytes in one request body at most, else 413 before it is read whole (default: 16 MiB)",
    )
    parser.add_argument(
        "--auto-truncate", action=argparse.BooleanOptionalAction, default=None,
        help="cut inputs past the model's max length as the in-process encoder does (default: on); a request "
        "may send truncate: false to have them refused",
    )  # fmt: skip
    parser.add_argument("--drain-seconds", type=float, default=None,
                        help="after SIGTERM, seconds accepted work may take (default: 30)")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP: OpenAI /v1/embeddings (with input_type), TEI /embed, /info, /metrics",
        description="Load a model once and serve it: POST /v1/embeddings (OpenAI; the role in input_type: query "
        "or document), POST /embed and /embed_sparse and GET /info (TEI), GET /health, GET /metrics (Prometheus). "
        "Inputs of all requests are batched together by tokens.",
    )
    add_model_options(parser, required_model=True)
    for option in fields(LoadOptions):
        if option.name not in _MORE_LOADING:
            continue
        flag = "--" + option.name.replace("_", "-")
        if option.type in ("bool", bool):
            parser.add_argument(flag, dest=option.name, action="store_true", help=option.metadata["help"])
        else:
            parser.add_argument(flag, dest=option.name, default=None, help=option.metadata["help"])
    parser.add_argument(
        "--prompt", action="append", type=_prompt, default=None, metavar="NAME=TEXT",
        help="a named prompt added to (or overriding) the model's own, repeatable; query=... and document=... set "
        "the slots",
    )  # fmt: skip
    parser.add_argument("--query-instruction", default=None, help="the query slot's instruction (default: the model's)")
    parser.add_argument(
        "--document-instruction", default=None, help="the document slot's instruction (default: the model's)"
    )
    _add_settings(parser)
    parser.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="local: this process (default); ray: a Ray Serve deployment (the serve-ray extra)",
    )  # fmt: skip
    _add_ray_options(parser)
    parser.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
        help="the server's log level (default: info)",
    )  # fmt: skip
    parser.set_defaults(func=_serve, prompts=None)
