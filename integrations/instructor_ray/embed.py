"""``embed_dataset``: INSTRUCTOR embeddings as a Ray Data ``map_batches`` stage over an actor pool.

Each actor loads the model once, from its folder or hub id (a folder must exist at the same path on
every node; a hub id is downloaded by each node), and keeps it for every batch it is given. The
encoder object itself never travels: only its name and settings are sent to the actors.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from instructor_core.errors import InputError, InputTypeError
from instructor_core.model.load_options import LoadOptions

__all__ = ["DEFAULT_BATCH_SIZE", "embed_dataset"]

#: Rows per ``map_batches`` call. One call is one ``encode`` call, which sorts its texts by length
#: and packs them into token-budget batches: larger blocks waste less padding.
DEFAULT_BATCH_SIZE = 256

#: Keeps the stages before the actor pool out of it. Ray fuses a chain of task stages into the actor
#: stage after it when their remote arguments agree (tasks reserving the CPUs each actor does); the
#: fused stage then bundles its *input* rows (one per shard path) up to ``batch_size``, so every shard
#: of a corpus under ``batch_size`` shards went to one actor task and the other actors idled. An empty
#: label selector asks nothing of a node, but stages whose remote arguments differ are not fused.
_UNFUSED: dict[str, Any] = {"label_selector": {}}
#: Tasks queued on one actor at a time. Ray's default (4) hands every block of a small corpus to the
#: first actor that is ready while the others still load the model; one at a time, a block waits for
#: the next free actor. A task is a whole block (a shard's records), so the lost overlap is negligible.
_IN_FLIGHT = 1

Role = Literal["document", "query"]


def _blocks_of(ds: Any, rows: int) -> Any:
    """``ds`` cut into blocks of at most ``rows`` rows before the actor pool, so that each actor call is
    a task of its own whose output goes on to the write stage as soon as it is embedded: a shard is
    written call by call, not in one piece at its end (a shard of 10k records embeds for minutes, and
    the watchdog saw nothing written for as long).

    Ray Data's streaming repartition fuses into the stage before it only when both reserve the same
    resources; it is given the stage before's, so it is never a stage of its own that reserves a
    whole CPU (on nodes whose actors leave a fraction of one free, such a stage could never be
    scheduled). Where the plan does not have that shape (another Ray Data), ``ds`` is left as it is.
    """
    cut = ds.repartition(target_num_rows_per_block=rows)
    try:
        op = cut._logical_plan.dag
        before = op.input_dependencies[0]
        args = before.ray_remote_args
        if not isinstance(args, dict) or getattr(before, "ray_remote_args_fn", None) is not None:
            return ds
        object.__setattr__(op, "ray_remote_args", dict(args))  # a frozen dataclass: Ray's own op, made above
    except (AttributeError, IndexError, TypeError):
        return ds
    return cut


def _describe_row(table: Any, row: int, id_column: str | None, path_column: str | None) -> str:
    """``id 'x' in shard.jsonl`` for the row, from whatever of both the block holds."""
    parts = []
    names = table.column_names
    if id_column is not None and id_column in names:
        parts.append(f"id {table.column(id_column)[row].as_py()!r}")
    else:
        parts.append(f"row {row} of its block")
    if path_column is not None and path_column in names:
        parts.append(f"in {table.column(path_column)[row].as_py()}")
    return " ".join(parts)


class _Embedder:
    """The ``map_batches`` callable class: one encoder per actor, loaded in ``__init__``."""

    def __init__(
        self,
        model: str,
        role: Role,
        instruction: str | None,
        instruction_column: str | None,
        text_column: str,
        output_column: str,
        encode_batch_size: int,
        threads: int | None,
        options: LoadOptions,
        id_column: str | None,
        path_column: str | None,
        progress: Any = None,
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        from instructor_core import InstructorEncoder

        if threads is not None:
            torch.set_num_threads(threads)
        self.encoder = InstructorEncoder.from_pretrained(model, options=options)
        defaults = self.encoder.instructions
        self.instruction = instruction if instruction is not None else getattr(defaults, role)
        self.instruction_column = instruction_column
        self.text_column = text_column
        self.output_column = output_column
        self.encode_batch_size = encode_batch_size
        self.id_column = id_column
        self.path_column = path_column
        self.progress = progress  # an instructor_ray.progress counter actor, or None
        if progress is not None:
            progress.add.remote(started=1)  # the model is loaded: this actor is ready

    def _strings(self, table: Any, column: str, what: str) -> list[str]:
        if column not in table.column_names:
            raise InputError(f"the dataset has no {what} column {column!r} (columns: {table.column_names})")
        values = table.column(column).to_pylist()
        for row, value in enumerate(values):
            if not isinstance(value, str):
                where = _describe_row(table, row, self.id_column, self.path_column)
                raise InputTypeError(f"{where}: {what} must be a str, got {type(value).__name__}")
        return values

    def __call__(self, table: Any) -> Any:
        from ray.data.extensions import ArrowTensorArray

        texts = self._strings(table, self.text_column, "text")
        if self.instruction_column is not None:
            instructions = self._strings(table, self.instruction_column, "instruction")
            pairs = list(zip(instructions, texts, strict=True))
        else:
            pairs = [(self.instruction, text) for text in texts]
        vectors = self.encoder.encode(pairs, batch_size=self.encode_batch_size)
        if self.progress is not None:
            self.progress.add.remote(embedded=len(texts))
        if self.output_column in table.column_names:
            table = table.drop_columns([self.output_column])
        return table.append_column(self.output_column, ArrowTensorArray.from_numpy(vectors))


def embed_dataset(
    ds: Any,
    model: str | os.PathLike[str],
    *,
    role: Role = "document",
    instruction: str | None = None,
    instruction_column: str | None = None,
    text_column: str = "text",
    output_column: str = "embedding",
    batch_size: int = DEFAULT_BATCH_SIZE,
    encode_batch_size: int = 32,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    options: LoadOptions | None = None,
    id_column: str | None = "id",
    path_column: str | None = None,
    progress: Any = None,
) -> Any:
    """Add an embedding column to a Ray dataset, lazily (nothing runs until the dataset is consumed).

    Rows stream through a pool of actors; each embeds ``instruction + text`` for its rows exactly as
    :meth:`InstructorEncoder.encode_documents` / ``encode_queries`` would in one process (same model,
    same device, same numbers to float precision). The driver never holds the corpus.

    Args:
        ds: A ``ray.data.Dataset`` with a text column.
        model: Model folder or hub id; loaded once per actor. A folder must be at this path on
            every node.
        role: "document" or "query": which of the model's default instructions to use.
        instruction: The instruction for every row; None takes the model's default for ``role``.
        instruction_column: A column holding each row's own instruction (mixed tasks in one job);
            overrides ``instruction`` and ``role``.
        text_column: The column with the texts.
        output_column: The column the vectors go into (float32, one fixed-shape tensor per row).
        batch_size: Rows per actor call (one ``encode`` call).
        encode_batch_size: Texts per forward pass inside that call.
        concurrency: Number of actors, or ``(min, max)`` for an autoscaling pool.
        num_cpus: CPUs reserved per actor; also its torch thread count (rounded, at least 1) on a
            CPU actor. None reserves 1 CPU (0 with GPUs).
        num_gpus: GPUs per actor (e.g. 1); the encoder then runs on the actor's GPU.
        options: How each actor loads the model (:class:`~instructor_core.LoadOptions`: backend,
            dtype, max_length, instructor, ...); its device is the actor's own.
        id_column: Column named in errors about a bad row (None or absent: the row's position).
        path_column: Column with each row's source file, named in errors (e.g. the ``path``
            column of ``ray.data.read_json(..., include_paths=True)``).
        progress: A counter actor (:func:`instructor_ray.progress.make_counter`) each batch embedded is
            reported to; None reports nothing.

    Returns:
        The dataset with ``output_column`` added.

    Raises:
        TypeError: Raised by the job (when consumed) for a row whose text or instruction is not a
            str, naming the row's id and file.
    """
    if role not in ("document", "query"):
        raise InputError(f'role must be "document" or "query", got {role!r}')
    for name, value in (("batch_size", batch_size), ("encode_batch_size", encode_batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive int, got {value!r}")
    if instruction is not None and not isinstance(instruction, str):
        raise InputTypeError(f"instruction must be a str (use '' for none), got {type(instruction).__name__}")
    if num_cpus is None:
        num_cpus = 0 if num_gpus else 1
    threads = None if num_gpus else max(1, round(num_cpus))
    from ray.data import ActorPoolStrategy

    if isinstance(concurrency, tuple):
        pool = ActorPoolStrategy(
            min_size=concurrency[0], max_size=concurrency[1], max_tasks_in_flight_per_actor=_IN_FLIGHT
        )
    else:
        pool = ActorPoolStrategy(size=concurrency, max_tasks_in_flight_per_actor=_IN_FLIGHT)
    ds = _blocks_of(ds, batch_size)
    return ds.map_batches(
        _Embedder,
        batch_size=batch_size,
        batch_format="pyarrow",
        zero_copy_batch=True,
        compute=pool,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        **_UNFUSED,
        fn_constructor_kwargs={
            "model": os.fspath(model),
            "role": role,
            "instruction": instruction,
            "instruction_column": instruction_column,
            "text_column": text_column,
            "output_column": output_column,
            "encode_batch_size": encode_batch_size,
            "threads": threads,
            "options": options or LoadOptions(),
            "id_column": id_column,
            "path_column": path_column,
            "progress": progress,
        },
    )
