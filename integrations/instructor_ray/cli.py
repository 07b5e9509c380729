"""``instructor ingest --engine ray``: the same ingest on a Ray cluster.

Registered as the ``ray`` entry point of ``instructor.engines`` (:data:`ENGINE`): the ``ingest``
command adds these options with :func:`add_ray_options` and hands over to :func:`run_ray_ingest`
when ``--engine ray`` is given. Ray is imported only then: loading this module stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from instructor_core.cli.commands.options import load_options
from instructor_core.errors import InputError, install_hint
from instructor_core.ingest.engine import IngestError
from instructor_core.ingest.readers import DEFAULT_TEXT_PATTERNS

from .watchdog import DEFAULT_STALL_LIMIT, DEFAULT_STALL_WARN

__all__ = ["ENGINE", "add_ray_options", "run_ray_ingest"]

T = TypeVar("T")


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray-address``, ``--concurrency``, ``--num-cpus``, ``--num-gpus``, ``--task-cpus``,
    ``--stall-warn`` and ``--stall-limit``."""
    group = parser.add_argument_group('--engine ray: distributed ingest (the ray extra: pip install -e ".[ray]")')
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join (host:port, ray://host:10001 or 'auto'); default: start a local Ray instance",
    )
    group.add_argument(
        "--concurrency", type=int, default=None, metavar="N", help="embedding actors; default: what the cluster fits"
    )
    group.add_argument(
        "--num-cpus", type=float, default=None, metavar="C", help="CPUs (and torch threads) per actor; default 1"
    )
    group.add_argument("--num-gpus", type=float, default=None, metavar="G", help="GPUs per actor, e.g. 1")
    group.add_argument(
        "--task-cpus",
        type=float,
        default=None,
        metavar="C",
        help="CPUs each read/check/write task reserves; default: the largest of 1, 0.5, 0.25, 0.1 that fits "
        "beside the actors",
    )
    group.add_argument(
        "--stall-warn",
        type=float,
        default=DEFAULT_STALL_WARN,
        metavar="S",
        help="say which stage waits, and for what, when nothing is embedded or written for S seconds "
        "(default %(default)g)",
    )
    group.add_argument(
        "--stall-limit",
        type=float,
        default=DEFAULT_STALL_LIMIT,
        metavar="S",
        help="stop when nothing is embedded or written for S seconds; the same command resumes "
        "(default %(default)g; 0: never)",
    )


#: Seconds to wait for the TCP connection to ``--ray-address`` before saying no cluster is there.
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """Refuse, in one line, a ``--ray-address`` HOST:PORT (or ``ray://HOST:PORT``) where nothing listens:
    ``ray.init`` would retry the connection for minutes, printing only its own warnings."""
    import socket

    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise InputError(
            f"--ray-address {address}: no Ray cluster answers there ({reason}); start one with `ray start --head` "
            "or pass its head's address"
        ) from None


def _start_ray(address: str | None, concurrency: int | None, num_cpus: float | None) -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--engine ray needs Ray Data: {install_hint('ray')}") from exc
    # Ray's INFO lines ("Started a local Ray instance", Ray Data's plans) would interleave with the
    # progress bar: warnings and errors only on the console. Ray Data's logger has its own console
    # handler at INFO (configured when ray.data is imported), and warns on every run that its progress
    # bars are off (the watchdog prints the one progress line): errors only there; its log file
    # (ray-data.log in the session's logs) keeps every line.
    import ray.data  # noqa: F401 - its loggers are configured when it is imported

    logging.getLogger("ray").setLevel(logging.WARNING)
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(max(handler.level, logging.ERROR))
    if address is not None:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as exc:  # a port that answers but is no Ray cluster's
            raise InputError(f"--ray-address {address}: no Ray cluster there ({str(exc).splitlines()[0]})") from None
    else:
        # A local instance, bounded: the actors asked for plus one CPU for reading and writing.
        cores = os.cpu_count() or 1
        wanted = (concurrency or cores) * (num_cpus or 1.0) + 1
        ray.init(
            address="local",  # a new instance, never one a ray_current_cluster file points to
            num_cpus=int(min(cores, max(2, wanted))),
            include_dashboard=False,
            object_store_memory=512 * 1024**2,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    return ray


def _check_args(args: argparse.Namespace) -> None:
    """Refuse, in one line, what ``--engine ray`` cannot run: before Ray starts or the store opens."""
    from instructor_core.cli.commands.store import corpus_of

    if getattr(args, "prompt_name", None) is not None:
        raise InputError(
            "--prompt-name is not taken by --engine ray yet: pass the prompt's text as --document-instruction"
        )
    if args.concurrency is not None and args.concurrency < 1:
        raise InputError(f"--concurrency must be >= 1, got {args.concurrency}")
    for name in ("num_cpus", "num_gpus", "task_cpus", "stall_warn", "stall_limit"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {value:g}")
    shards, _ = corpus_of(args)  # what the path means and the options that fit it, as --engine local: before Ray
    if not args.id_field and len(shards) > 1:
        raise InputError(f"--id-field '' numbers records by position, which needs one shard; {len(shards)} given")


def run_ray_ingest(args: argparse.Namespace, *, model: str, store: str) -> int:
    """Ingest ``args.corpus`` (JSONL / Parquet / CSV shards: a file, a folder or a glob) on Ray.

    Args:
        args: The parsed ``ingest`` arguments (collection, instructions, fields, batch size, quiet
            and the options of :func:`add_ray_options`).
        model: The model as stored with the collection (a folder's absolute path, or a hub id).
        store: The store URL.

    Returns:
        The exit code.
    """
    _check_args(args)  # every refusal of the arguments and the corpus, before Ray starts
    from .failures import expected_error_in, hide_ray_tracebacks
    from .ingest import ingest_dataset, read_corpus_dataset
    from .stores import StoreTarget, open_target

    target = StoreTarget(store, args.collection)
    opened = open_target(target)  # an unknown or unreachable store fails before Ray starts
    single_writer = opened.single_writer
    opened.close()
    ray = _start_ray(args.ray_address, args.concurrency, args.num_cpus)
    restore_logs = hide_ray_tracebacks()  # the failure is reported below: one line, or a bug's traceback
    try:
        from .resources import nodes_of, resolve_shape

        shape = resolve_shape(  # an impossible shape is one line now, not a job that waits forever
            nodes_of(ray.nodes()),
            concurrency=args.concurrency,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            task_cpus=args.task_cpus,
        )
        concurrency = shape.concurrency
        if not args.quiet:
            where = args.ray_address or "a local Ray instance"
            print(
                f"engine ray: {concurrency} embedding actor(s) on {where}, {shape.task_cpus:g} CPU per read/write task",
                file=sys.stderr,
            )
            if single_writer:
                what = f"{target.describe()} is an embedded store" if target.embedded else f"{store} takes one writer"
                print(f"{what}: the cluster embeds, this process writes", file=sys.stderr)
        # one progress line, the watchdog's (records embedded, written, rate), not Ray Data's per-stage bars
        ray.data.DataContext.get_current().enable_progress_bars = False
        metadata_fields = None
        if args.metadata_fields is not None:
            metadata_fields = [f for f in args.metadata_fields.split(",") if f]
        ds = read_corpus_dataset(
            args.corpus,
            num_cpus=shape.task_cpus,
            id_field=args.id_field or None,
            text_field=args.text_field,
            metadata_fields=metadata_fields,
            title_field=args.title_field or None,
            patterns=getattr(args, "glob", None) or DEFAULT_TEXT_PATTERNS,
        )
        write_batch = getattr(args, "write_batch_size", None) or 256
        # embedding counts as progress while fewer than 4 calls per actor wait to be written (writes follow each call)
        backlog = 4 * write_batch * concurrency
        report = _watched(ray, args, lambda counter: ingest_dataset(
            ds,
            target,
            args.collection,
            model,
            on_duplicate=args.on_duplicate,
            show_progress=False,  # the watchdog prints the progress
            query_instruction=args.query_instruction,
            document_instruction=args.document_instruction,
            options=load_options(args),
            batch_size=write_batch,
            concurrency=concurrency,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            skip_unchanged=not getattr(args, "reembed", False),
            task_num_cpus=shape.task_cpus,
            progress=counter,
        ), backlog=backlog)  # fmt: skip
    except Exception as exc:
        expected = expected_error_in(exc)  # a store down or refusing, a bad shard: one line
        if expected is None or expected is exc:
            raise
        if isinstance(expected, IngestError) and str(expected).startswith("the store could not"):
            # the core's write loop does not know the URL: name the store the user gave
            expected = IngestError(str(expected).replace("the store", f"the store {store}", 1), expected.report)
        raise expected from None
    finally:
        restore_logs()
        ray.shutdown()
    if not args.quiet:
        print(f"{report.summary()} into collection {args.collection!r} ({target.describe()}) with Ray", file=sys.stderr)
    return 0


def _stuck(message: str) -> None:
    """The stopped job did not end (a main thread that never returns to Python): the stop's line, exit 2."""
    print(f"instructor ingest: error: {message}", file=sys.stderr, flush=True)
    os._exit(2)


def _watched(ray: ModuleType, args: argparse.Namespace, job: Callable[[Any], T], *, backlog: int | None = None) -> T:
    """Run ``job(counter)`` under the watchdog: progress lines, a stall warning, a stop past
    ``--stall-limit`` (:class:`~instructor_ray.watchdog.StallError`, one line, exit 2).

    ``backlog``: embedded records that may wait to be written while embedding still counts as progress."""
    from .progress import make_counter
    from .watchdog import Monitor, Watchdog, waiting_for, watched

    counter = make_counter(ray)
    monitor = Monitor(
        lambda: ray.get(counter.counts.remote(), timeout=10),
        Watchdog(args.stall_warn, args.stall_limit, time.monotonic()),
        describe_wait=lambda: waiting_for(ray),
        show_progress=not args.quiet,
        interval_s=min(2.0, max(0.5, (args.stall_warn or 2.0) / 4)),
        backlog=backlog,
        on_stuck=_stuck,
    )
    return watched(monitor, lambda: job(counter))


class _RayEngine:
    """``--engine ray`` (the ``instructor.engines`` entry point ``ray``)."""

    description = "embed on a Ray cluster with Ray Data"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """See :func:`add_ray_options`."""
        add_ray_options(parser)

    def run(self, args: argparse.Namespace, *, model: str, store: str) -> int:
        """See :func:`run_ray_ingest`."""
        return run_ray_ingest(args, model=model, store=store)


#: The engine the CLI finds under ``instructor.engines``.
ENGINE = _RayEngine()
