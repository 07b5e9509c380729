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
from pathlib import Path
from types import ModuleType

from instructor_core.cli.commands.options import load_options
from instructor_core.errors import InputError
from instructor_core.ingest.readers import DEFAULT_TEXT_PATTERNS, SHARD_SUFFIXES

__all__ = ["ENGINE", "add_ray_options", "default_concurrency", "run_ray_ingest"]


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray-address``, ``--concurrency``, ``--num-cpus`` and ``--num-gpus``."""
    group = parser.add_argument_group('--engine ray: distributed ingest (pip install "instructor[ray]")')
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


def default_concurrency(resources: dict[str, float], num_cpus: float | None, num_gpus: float | None) -> int:
    """Actors a cluster with ``resources`` fits: one per GPU share, else one per CPU share with one
    CPU left for the read and write tasks; at least 1."""
    if num_gpus:
        return max(1, int(resources.get("GPU", 0) // num_gpus))
    per_actor = num_cpus or 1.0
    return max(1, int((resources.get("CPU", 1) - 1) // per_actor))


def _holds_shards(folder: str) -> bool:
    """Whether a corpus folder holds shard files (else it is a folder of text files)."""
    return any(p.suffix.lower() in SHARD_SUFFIXES for p in Path(folder).rglob("*") if p.is_file())


def _start_ray(address: str | None, concurrency: int | None, num_cpus: float | None) -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise ImportError('--engine ray needs Ray Data: pip install "instructor[ray]"') from exc
    # Ray's INFO lines ("Started a local Ray instance", Ray Data's plans) would interleave with the
    # progress bar: warnings and errors only.
    logging.getLogger("ray").setLevel(logging.WARNING)
    if address is not None:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
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
    if getattr(args, "prompt_name", None) is not None:
        raise InputError(
            "--prompt-name is not taken by --engine ray yet: pass the prompt's text as --document-instruction"
        )
    from .failures import expected_error_in, hide_ray_tracebacks
    from .ingest import _files, ingest_dataset, read_corpus_dataset
    from .reading import corpus_shards
    from .stores import StoreTarget, open_target

    if args.title_field and os.path.isdir(args.corpus) and not _holds_shards(args.corpus):
        raise InputError(f"--title-field applies to a JSONL, CSV or Parquet corpus, and {args.corpus} is a folder")
    for name in ("concurrency",):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name} must be >= 1, got {value}")
    shards = corpus_shards(_files(args.corpus))  # a missing or mixed corpus fails before Ray starts
    if not args.id_field and len(shards) > 1:
        raise InputError(f"--id-field '' numbers records by position, which needs one shard; {len(shards)} given")
    target = StoreTarget(store, args.collection)
    opened = open_target(target)  # an unknown or unreachable store fails before Ray starts
    single_writer = opened.single_writer
    opened.close()
    ray = _start_ray(args.ray_address, args.concurrency, args.num_cpus)
    restore_logs = hide_ray_tracebacks()  # the failure is reported below: one line, or a bug's traceback
    try:
        concurrency = args.concurrency or default_concurrency(ray.cluster_resources(), args.num_cpus, args.num_gpus)
        if not args.quiet:
            where = args.ray_address or "a local Ray instance"
            print(f"engine ray: {concurrency} embedding actor(s) on {where}", file=sys.stderr)
            if single_writer:
                what = f"{target.describe()} is an embedded store" if target.embedded else f"{store} takes one writer"
                print(f"{what}: the cluster embeds, this process writes", file=sys.stderr)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = True
        else:
            ray.data.DataContext.get_current().enable_progress_bars = False
        metadata_fields = None
        if args.metadata_fields is not None:
            metadata_fields = [f for f in args.metadata_fields.split(",") if f]
        ds = read_corpus_dataset(
            args.corpus,
            id_field=args.id_field or None,
            text_field=args.text_field,
            metadata_fields=metadata_fields,
            title_field=args.title_field or None,
            patterns=getattr(args, "glob", None) or DEFAULT_TEXT_PATTERNS,
        )
        report = ingest_dataset(
            ds,
            target,
            args.collection,
            model,
            on_duplicate=args.on_duplicate,
            show_progress=not args.quiet,
            query_instruction=args.query_instruction,
            document_instruction=args.document_instruction,
            options=load_options(args),
            batch_size=getattr(args, "write_batch_size", None) or 256,
            concurrency=concurrency,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            skip_unchanged=not getattr(args, "reembed", False),
        )
    except Exception as exc:
        expected = expected_error_in(exc)  # a store down or refusing, a bad shard: one line
        if expected is None or expected is exc:
            raise
        raise expected from None
    finally:
        restore_logs()
        ray.shutdown()
    if not args.quiet:
        print(f"{report.summary()} into collection {args.collection!r} ({target.describe()}) with Ray", file=sys.stderr)
    return 0


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
