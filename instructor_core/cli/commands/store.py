"""``instructor ingest`` and ``instructor search``: a corpus into a vector store, and queries against it.

Stores are opened by URL through ``instructor_core.ingest.stores.open_store`` (entry points of the group
``instructor.stores``): ``chroma:DIR`` (embedded, the default at ``.instructor/chroma``),
``qdrant:DIR``, ``chroma+http://HOST:PORT`` and ``qdrant+http(s)://HOST:PORT`` (servers), or any
store a third party registers. This module only dispatches: the model and instructions are stored
with the collection by the store, so ``search`` needs only the store and the collection.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from instructor_core.cli.commands.options import (
    add_model_options,
    add_prompt_name_option,
    add_write_batch_size_option,
    load_encoder,
    positive_int,
    prompt_or_instruction,
)
from instructor_core.cli.engines import add_engine_options, run_engine
from instructor_core.cli.terminal import printable
from instructor_core.errors import InputError, InstructorError
from instructor_core.ingest import store_ops
from instructor_core.ingest.readers import read_queries
from instructor_core.ingest.stores import (
    Hit,
    ModelChangeWarning,
    NoKeywordTermsWarning,
    Store,
    check_collection_name,
    check_features,
    check_store_kind,
    layout_features,
    open_store,
)
from instructor_core.safe_paths import atomic_output, same_file

if TYPE_CHECKING:
    from instructor_core.ingest.readers import ReadOptions

__all__ = ["DEFAULT_STORE", "parse_filters", "register"]

DEFAULT_STORE = "chroma:.instructor/chroma"


def parse_filters(items: Sequence[str] | None) -> dict[str, Any]:
    """``["topic=science", "year=2020"]`` -> ``{"topic": "science", "year": 2020}`` (JSON values where
    they parse, else strings)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--filter {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if not isinstance(value, (str, int, float, bool)):
            value = raw
        out[key] = value
    return out


def _model_name(model: str) -> str:
    """Local folders are stored as absolute paths so a search from another directory finds them."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def check_features_early(url: str, *, hybrid: bool, quantization: str | None) -> None:
    """Refuse ``--hybrid`` or ``--quantization`` for a store that declares it cannot hold them
    (:func:`~instructor_core.ingest.stores.store_factory`), before anything is opened or created
    (a store that declares nothing refuses them when the collection is made).

    Raises:
        StoreError: Naming the store and why.
    """
    check_features(url, layout_features("bm25" if hybrid else None, quantization or "none"))


def _open(args: argparse.Namespace, *, create: bool = True) -> Store:
    """The store ``--store`` names; ``create=False`` (every command but ingest) refuses a missing
    embedded store instead of making an empty one behind a mistyped path."""
    check_store_kind(args.store)
    try:
        return open_store(args.store, create=create)
    except InstructorError:
        raise  # a store's own refusal (a lock file that is a link, ...) names its file already
    except ValueError as exc:
        raise InputError(f"--store: {exc}") from None


# ---------------------------------------------------------------------------------------------- ingest
def read_options(args: argparse.Namespace) -> ReadOptions:
    """The ``ingest`` options that say how a corpus is read, for every engine."""
    from instructor_core.ingest.readers import DEFAULT_TEXT_PATTERNS, ReadOptions

    metadata_fields = None
    if args.metadata_fields is not None:
        metadata_fields = tuple(f for f in args.metadata_fields.split(",") if f)
    return ReadOptions(
        id_field=args.id_field or None,
        text_field=args.text_field,
        metadata_fields=metadata_fields,
        title_field=args.title_field or None,
        patterns=tuple(args.glob or DEFAULT_TEXT_PATTERNS),
    )


def corpus_of(args: argparse.Namespace) -> tuple[list[str], ReadOptions]:
    """The corpus' shards (what its path means, the same for every engine) and how they are read;
    options that do not apply to its kind are refused."""
    from instructor_core.ingest.readers import corpus_shards

    shards = corpus_shards(args.corpus)
    text_folder = len(shards) == 1 and Path(shards[0]).is_dir()
    if text_folder and args.title_field:
        raise InputError(f"--title-field applies to JSONL, CSV or Parquet records, and {args.corpus} is a folder "
                         "of text files")  # fmt: skip
    if args.glob and not text_folder:
        raise InputError(f"--glob selects the files of a folder of text files, and {args.corpus} holds records")
    return shards, read_options(args)


def _records(args: argparse.Namespace) -> Iterable[dict]:
    from instructor_core.ingest.readers import open_corpus

    shards, options = corpus_of(args)
    return open_corpus(shards, options)


def count_records(corpus: Path) -> int | None:
    """The number of records in a JSONL or CSV/TSV file, for the progress bar's total and ETA:
    its non-blank lines (less the CSV header). One fast pass over the bytes; None for a folder or
    another kind of file. A CSV field spanning lines makes it an over-count, which only the bar sees.
    """
    suffix = corpus.suffix.lower()
    if not corpus.is_file() or suffix not in (".jsonl", ".ndjson", ".csv", ".tsv"):
        return None
    count = 0
    with corpus.open("rb") as handle:
        for line in handle:
            if line.strip():
                count += 1
    return max(count - 1, 0) if suffix in (".csv", ".tsv") else count


class _Sized:
    """Records with a known count: ``run_ingest`` gives its progress bar a total from ``len``."""

    def __init__(self, records: Iterable[dict], count: int) -> None:
        self.records, self.count = records, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)


#: Skipped files named one per line after a folder ingest; the rest are counted.
SHOWN_SKIPPED = 10


def _report_skipped(records: Iterable[dict]) -> None:
    """After a folder ingest, say on stderr which files the reader left out and why."""
    from instructor_core.ingest.readers import TextFolderReader

    if not isinstance(records, TextFolderReader) or not records.skipped:
        return
    skipped = records.skipped
    print(f"skipped {len(skipped)} file(s) under {printable(str(records.folder))}:", file=sys.stderr)
    for item in skipped[:SHOWN_SKIPPED]:  # a file name is someone else's text: no ESC reaches the terminal
        print(f"  {printable(item.path)}: {printable(item.reason)}", file=sys.stderr)
    if len(skipped) > SHOWN_SKIPPED:
        print(f"  ... and {len(skipped) - SHOWN_SKIPPED} more (--glob selects the files read)", file=sys.stderr)


def _not_empty(corpus: str, records: Iterable[dict]) -> Iterable[dict]:
    """``records``, once its first record is read; a corpus with none is refused, saying why (an
    empty file, a folder with no file to read), before a model loads or a collection is made.

    Raises:
        InputError: Naming the corpus and, for a folder, what was skipped.
    """
    from instructor_core.ingest.readers import TextFolderReader

    rest = iter(records)
    first = next(rest, None)
    if first is not None:
        return itertools.chain([first], rest)
    if isinstance(records, TextFolderReader):
        skipped = records.skipped
        if not skipped:
            raise InputError(f"corpus folder {corpus} holds no files; nothing was ingested")
        shown = "; ".join(f"{printable(s.path)}: {s.reason}" for s in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise InputError(
            f"corpus folder {corpus}: no file read, {len(skipped)} skipped ({shown}{more}); nothing was ingested "
            "(--glob selects the files read)"
        )
    raise InputError(f"corpus {corpus} holds no records; nothing was ingested")


def _check_server(args: argparse.Namespace) -> None:
    if getattr(args, "server", None) and args.model is not None:
        raise InputError(f"pass --model or --server, not both (--server {args.server} serves its own model)")


def _ingest(args: argparse.Namespace) -> int:
    _check_server(args)
    if getattr(args, "quantization", None) not in (None, "none") and getattr(args, "engine", "local") != "local":
        raise InputError(
            f"--quantization {args.quantization} makes a collection with --engine local only; make it so with a "
            "first (small) local ingest, then ingest into it with --engine ray without --quantization"
        )
    if getattr(args, "hybrid", False) and getattr(args, "engine", "local") != "local":
        raise InputError(
            f"--hybrid goes with --engine local for now (--engine {args.engine} writes dense vectors only)"
        )
    if getattr(args, "server", None) and getattr(args, "engine", "local") != "local":
        raise InputError(f"--server goes with --engine local (--engine {args.engine} loads the model on each worker)")
    if args.model is None and not getattr(args, "server", None):
        raise InputError("no model given: pass --model (or --server URL)")
    _check_chunking(args)
    model = _model_name(args.model) if args.model is not None else ""
    return run_engine(args, model=model, store=args.store, local=LOCAL_ENGINE)


def _check_chunking(args: argparse.Namespace) -> None:
    """--chunk-tokens/--chunk-overlap: checked before the model loads (their fit in the model, after)."""
    from instructor_core.ingest.chunking import ChunkSettings

    tokens, overlap = getattr(args, "chunk_tokens", None), getattr(args, "chunk_overlap", None)
    if tokens is None:
        if overlap is not None:
            raise InputError("--chunk-overlap goes with --chunk-tokens N")
        return
    if getattr(args, "engine", "local") != "local":
        raise InputError(f"--chunk-tokens goes with --engine local for now (--engine {args.engine} embeds whole texts)")
    if getattr(args, "server", None):
        raise InputError("--chunk-tokens needs the model's tokenizer here: pass --model, not --server")
    ChunkSettings(tokens, overlap or 0)


def _chunked(args: argparse.Namespace, records: Iterable[dict], encoder: Any) -> Iterable[dict]:  # noqa: ANN401
    """The records, with long texts split into token windows where --chunk-tokens asks."""
    from instructor_core.ingest.chunking import ChunkSettings, chunk_records

    if getattr(args, "chunk_tokens", None) is None:
        return records
    settings = ChunkSettings(args.chunk_tokens, args.chunk_overlap or 0)
    settings.check_fits(encoder, encoder.instructions.document)  # the instruction the windows are embedded under
    return chunk_records(records, encoder.tokenizer, settings)


def ingest_local(args: argparse.Namespace, *, model: str, store: str) -> int:
    """The single-process engine (``--engine local``, the default): read, embed and write here."""
    read = _records(args)  # fails early on a missing corpus
    records = _not_empty(args.corpus, read)  # and on one with nothing in it, before the model loads
    args.model = model or None
    encoder = load_encoder(args)  # a bad model folder or device fails before the store is touched
    if not model:  # --server: the collection records the model the server serves
        model = str(getattr(encoder, "model_name", ""))
    document = prompt_or_instruction(encoder, args.prompt_name, args.document_instruction, "--document-instruction")
    encoder.instructions = encoder.instructions.replace(query=args.query_instruction, document=document)
    check_collection_name(args.store, args.collection)  # before a store folder is made
    check_features_early(args.store, hybrid=getattr(args, "hybrid", False), quantization=args.quantization)
    chunking = getattr(args, "chunk_tokens", None) is not None
    records = _chunked(args, records, encoder)
    opened = _open(args)  # an embedded store's lock is held from here to close()
    try:
        replaced = store_ops.replace_empty_collection(
            opened, args.collection, encoder, model=model, quantization=args.quantization
        )
        if replaced and not args.quiet:
            print(
                f"collection {args.collection!r} was empty and made for another {', '.join(replaced)}: "
                "made anew for this run",
                file=sys.stderr,
            )
        count = None if args.quiet or chunking else count_records(Path(args.corpus))
        with one_line_warnings("instructor ingest", ModelChangeWarning):
            report = _ingest_into(opened, args, records if count is None else _Sized(records, count), encoder, model)
    finally:
        opened.close()
    if not args.quiet:
        print(f"{report.summary()} into collection {args.collection!r} ({opened.describe()})", file=sys.stderr)
        if report.truncated and getattr(args, "chunk_tokens", None) is None:
            print(
                "note: the model reads only the start of a longer text; --chunk-tokens N [--chunk-overlap M] splits "
                "long texts into windows of N tokens (ids ID#k), and search --group-by-parent returns each "
                "document's best window",
                file=sys.stderr,
            )
        _report_skipped(read)
    return 0


def _ingest_into(opened: Store, args: argparse.Namespace, records: Iterable[dict], encoder: Any, model: str) -> Any:  # noqa: ANN401
    return store_ops.ingest(
        opened,
        args.collection,
        records,
        encoder,
        model=model,
        batch_size=args.write_batch_size,
        on_duplicate=args.on_duplicate,
        show_progress=not args.quiet,
        allow_model_change=args.allow_model_change,
        quantization=args.quantization,
        hybrid=getattr(args, "hybrid", False),
        skip_unchanged=not getattr(args, "reembed", False),
    )


@contextmanager
def one_line_warnings(prog: str, shown: type[Warning]) -> Iterator[None]:
    """Show the library's warnings of class ``shown`` raised inside the block as one line each,
    ``PROG: warning: MESSAGE``, on stderr when they happen (even under --quiet: they say what a
    run leaves behind); other warnings as Python shows them."""
    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:  # fmt: skip
            if issubclass(category, shown):
                print(f"{prog}: warning: {printable(str(message))}", file=sys.stderr)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always", shown)
        yield


# ---------------------------------------------------------------------------------------------- search
#: What a hit's score is, by the mode that ran (and, for hybrid, the fusion).
SCORE_KINDS = {"dense": "cosine", "keyword": "bm25"}


def score_kind(mode: str, fusion: str) -> str:
    """``"cosine"`` (dense), ``"bm25"`` (keyword), or the fusion's ``"rrf"``/``"dbsf"`` (hybrid)."""
    return SCORE_KINDS.get(mode, fusion)


def _search_all(args: argparse.Namespace, store: Store, queries: Sequence[str]) -> list[list[Hit]]:
    """Every query's hits, under one model load and one ``store_ops.search`` call (the collection read once).
    Sets ``args.mode`` to the mode that runs, checked against the collection before the model loads."""
    from instructor_core.instructions import Instructions

    info = store.info(args.collection)
    args.mode = store_ops.resolve_mode(args.collection, info.layout, args.mode)  # refused here, before the model

    asked = _model_name(args.model) if args.model is not None else None
    model = args.model if args.model is not None else info.model
    if model is None and not getattr(args, "server", None):
        raise InputError(f"collection {args.collection!r} does not record its model; pass --model")
    # a collection made outside instructor records no instructions: the model's own apply
    recorded = info.model is not None
    instructions = Instructions(info.query_instruction, info.document_instruction) if recorded else None
    args.model = model
    encoder = load_encoder(args, instructions)
    _dimension_from_layout(args, encoder, info.layout)
    search = partial(
        store_ops.search,
        store,
        args.collection,
        encoder=encoder,
        filters=parse_filters(args.filter) or None,
        instruction=prompt_or_instruction(encoder, args.prompt_name, args.query_instruction, "--query-instruction"),
        vector=args.vector,
        model=asked,
        allow_model_change=args.allow_model_change,
        info=info,
        mode=args.mode,
        fusion=args.fusion,
    )
    if not getattr(args, "group_by_parent", False):
        return search(queries=list(queries), k=args.k)
    return _best_windows(search, list(queries), args.k)


def _dimension_from_layout(args: argparse.Namespace, encoder: Any, layout: Any) -> None:  # noqa: ANN401
    """A collection ingested with ``--dim N`` is searched at N without repeating ``--dim``: where no --dim is
    given and the collection's vectors are shorter than the model's, the encoder keeps their first N."""
    if getattr(args, "truncate_dim", None) is not None or layout is None or not getattr(layout, "dimension", None):
        return
    full = getattr(encoder, "model_dimension", None)
    if isinstance(full, int) and layout.dimension < full and hasattr(encoder, "truncate_dim"):
        encoder.truncate_dim = layout.dimension


#: search --group-by-parent asks for k times these many hits, then 4 times more for the queries that have
#: fewer than k documents among them where the store had more to give.
_GROUP_FETCH = (4, 16, 64)
#: Hits asked for in one store call, all its queries together: embedded Chroma refuses a call whose results
#: need more SQL variables than its SQLite allows (32,766): 300 queries x 100 hits passed, 250 x 400 did not.
_GROUP_CALL_HITS = 30_000


def _best_windows(search: Any, queries: list[str], k: int) -> list[list[Hit]]:  # noqa: ANN401 (store_ops.search)
    """Each query's best window per document (``parent_id``, else the hit's id), at most ``k`` documents."""
    from instructor_core.ingest.chunking import best_per_parent, parent_of

    def parent(hit: Hit) -> str:
        return parent_of(hit.id, hit.metadata)

    results: list[list[Hit]] = [[] for _ in queries]
    pending = list(range(len(queries)))
    for factor in _GROUP_FETCH:
        fetch = k * factor
        step = max(1, _GROUP_CALL_HITS // fetch)
        still: list[int] = []
        for start in range(0, len(pending), step):
            chosen = pending[start : start + step]
            for index, hits in zip(chosen, search(queries=[queries[i] for i in chosen], k=fetch), strict=True):
                results[index] = best_per_parent(hits, k, parent)
                if len(results[index]) < k and len(hits) == fetch:
                    still.append(index)
        pending = still
        if not pending:
            break
    return results


def _hit_row(rank: int, hit: Hit, kind: str | None = None) -> dict[str, Any]:
    row = {"rank": rank, "id": hit.id, "score": hit.score, "text": hit.text, "metadata": dict(hit.metadata)}
    if kind is not None:
        row["score_kind"] = kind
    return row


def _print_hits(hits: Sequence[Hit], as_json: bool, kind: str | None = None) -> None:
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            print(json.dumps(_hit_row(rank, hit, kind), ensure_ascii=False))
        else:
            shown = " ".join(hit.text.split())  # display only: one line per hit
            shown = shown if len(shown) <= 160 else shown[:157] + "..."
            # a stored text is someone else's: no ESC sequence or bidi override reaches the terminal
            print(f"{rank:>3}. {hit.score:.4f}  {printable(hit.id)}  {printable(shown)}")


def _write_results(
    path: str | None, queries: Sequence[tuple[str, str]], results: Sequence[Sequence[Hit]], mode: str, kind: str
) -> None:
    """One JSON line per query: ``{"query_id", "query", "mode", "score_kind", "hits": [{rank, id, score, text,
    metadata}]}``."""
    lines = (
        json.dumps(
            {
                "query_id": qid,
                "query": text,
                "mode": mode,
                "score_kind": kind,
                "hits": [_hit_row(r, h) for r, h in enumerate(hits, start=1)],
            },
            ensure_ascii=False,
        )
        + "\n"
        for (qid, text), hits in zip(queries, results, strict=True)
    )
    if path is None or path == "-":
        sys.stdout.writelines(lines)
        return
    with atomic_output(path, "w", what="-o") as handle:  # a temporary file, then renamed: never half a file
        handle.writelines(lines)


def _search(args: argparse.Namespace) -> int:
    _check_server(args)
    if (args.query is None) == (args.queries is None):
        raise InputError("give one QUERY or --queries FILE")
    if args.output is not None and args.queries is None:
        raise InputError("-o/--output goes with --queries (a single query prints its hits)")
    if args.output not in (None, "-") and not Path(args.output).parent.is_dir():
        raise FileNotFoundError(f"-o {args.output}: the folder {Path(args.output).parent} does not exist")
    if args.output not in (None, "-") and args.queries not in (None, "-") and Path(args.output).exists():
        if same_file(args.output, args.queries):
            raise InputError(f"-o {args.output!r} is the --queries file itself; write the results to another file")
    parse_filters(args.filter)  # a malformed filter fails before the store is opened
    if args.mode in ("keyword", "hybrid"):  # a store that cannot hold a keyword index: no re-ingest could give one
        check_features_early(args.store, hybrid=True, quantization=None)
    queries = read_queries(args.queries) if args.queries is not None else [("1", args.query)]
    store = _open(args, create=False)
    try:
        with one_line_warnings("instructor search", NoKeywordTermsWarning):  # a query of stop words only: say so
            results = _search_all(args, store, [text for _, text in queries])
    finally:
        store.close()
    kind = score_kind(args.mode, args.fusion)
    if args.queries is not None:
        _write_results(args.output, queries, results, args.mode, kind)
    elif args.json:
        _print_hits(results[0], True, kind)
    else:
        if not args.quiet:  # on stderr: stdout stays one line per hit
            print(f"mode {args.mode}, score: {kind}", file=sys.stderr)
        _print_hits(results[0], False)
    return 0


# ---------------------------------------------------------------------------------------------- parsers
def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("INSTRUCTOR_STORE", DEFAULT_STORE),
        help="chroma:DIR | qdrant:DIR | chroma+http://HOST:PORT | qdrant+http://HOST:PORT, or a store "
        "another package registers "
        f"(default: $INSTRUCTOR_STORE or {DEFAULT_STORE})",
    )
    parser.add_argument("--collection", required=True, help="collection name")
    parser.add_argument(
        "--query-instruction",
        default=None,
        help="query instruction; default: the model's (ingest), the one stored with the collection (search)",
    )
    parser.add_argument(
        "--allow-model-change",
        action="store_true",
        help="use a model whose fingerprint (weights, configuration) differs from the one the collection "
        "records; refused by default, since their vectors do not compare",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` and ``search`` subcommands."""
    ingest = subparsers.add_parser(
        "ingest",
        help="embed a corpus with the document instruction into Chroma or Qdrant",
        description="Embed a corpus (JSONL, CSV/TSV, or a folder of text files) with the document "
        "instruction and upsert it into a collection; re-running resumes without duplicates. "
        "BEIR corpora read as they are: '_id' serves where there is no 'id', --title-field title joins "
        "the title to the text.",
    )
    ingest.add_argument("corpus", help=".jsonl, .csv/.tsv file, or a folder of text files (see --glob)")
    _add_store_args(ingest)
    add_model_options(ingest, required_model=True, server=True)
    ingest.add_argument("--document-instruction", default=None, help="document instruction; default: the model's")
    add_prompt_name_option(ingest)
    ingest.add_argument("--text-field", default="text", help="field/column with the text (default: text)")
    ingest.add_argument(
        "--id-field", default="id", help="field/column with the id (default: id, else BEIR's _id; '' numbers rows)"
    )
    ingest.add_argument(
        "--metadata-fields", default=None, help="comma-separated fields to keep as metadata (default: all others)"
    )
    ingest.add_argument(
        "--title-field",
        default=None,
        metavar="FIELD",
        help="JSONL/CSV field joined before the text as 'title text' (BEIR: title); default: none",
    )
    ingest.add_argument(
        "--glob",
        action="append",
        default=None,
        metavar="PATTERN",
        help="folder corpus: files to read, repeatable; a pattern without '/' matches the file name at any "
        "depth, one with '/' the relative path ('docs/**/*.rst') (default: *.txt and *.md)",
    )
    add_write_batch_size_option(ingest)
    ingest.add_argument(
        "--on-duplicate",
        choices=("error", "first", "last"),
        default="error",
        help="an id that occurs twice in the corpus: error (default, naming both records), or keep the "
        "first or the last copy",
    )
    ingest.add_argument(
        "--quantization",
        choices=("none", "int8", "binary"),
        default=None,
        help="keep a new collection's vectors quantized too, int8 (scalar) or binary, rescored on the float "
        "vectors at search (Qdrant stores only); default: none for a new collection, the existing one's otherwise",
    )
    ingest.add_argument(
        "--hybrid",
        action="store_true",
        help="also keep a keyword index: a BM25 sparse vector of each document's raw text beside its dense "
        "vector, for 'search --mode keyword|hybrid' (Qdrant stores; a new collection)",
    )
    ingest.add_argument(
        "--reembed",
        action="store_true",
        help="embed and write every record, also those the collection holds unchanged (by default a re-run "
        "skips a record stored under its id with the same text and metadata: its content hash)",
    )
    ingest.add_argument(
        "--chunk-tokens",
        type=positive_int,
        default=None,
        metavar="N",
        help="split each text longer than N tokens (the model's own tokens) into windows of N tokens, stored as "
        "ID#0, ID#1, ... with parent_id and window in the metadata; default: whole texts, cut at the model's "
        "max length (the summary counts them)",
    )
    ingest.add_argument(
        "--chunk-overlap",
        type=int,
        default=None,
        metavar="M",
        help="with --chunk-tokens: tokens each window shares with the one before (default: 0)",
    )
    ingest.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_engine_options(ingest, local=LOCAL_ENGINE)
    ingest.set_defaults(func=_ingest)

    search = subparsers.add_parser(
        "search",
        help="search a collection with the query instruction",
        description="Embed a query with the collection's model and query instruction and print the best "
        "matches (rank, cosine score, id, text); or, with --queries FILE, search every query of a file under "
        "one model load and write JSON lines.",
    )
    search.add_argument("query", nargs="?", default=None, help="the query text (or --queries FILE)")
    search.add_argument(
        "--queries",
        default=None,
        metavar="FILE",
        help="many queries under one model load: a text file (one query per line) or JSONL with 'text' and "
        "optional 'id'/'_id' (BEIR queries.jsonl); '-' reads stdin. Writes JSON lines "
        '{"query_id", "query", "hits"}',
    )
    search.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="with --queries: write the JSON lines here (default: stdout)",
    )
    _add_store_args(search)
    search.add_argument("-k", type=positive_int, default=10, help="number of results (default: 10)")
    add_model_options(
        search,
        required_model=False,
        server=True,
        model_help="model folder or hub id; default: the one stored with the collection (if given, it must be "
        "that one)",
    )
    add_prompt_name_option(search)
    search.add_argument("--filter", action="append", metavar="KEY=VALUE", help="metadata filter (repeatable)")
    search.add_argument("--vector", default=None, help="named vector to search (Qdrant collections with several)")
    search.add_argument(
        "--mode",
        choices=("dense", "keyword", "hybrid"),
        default=None,
        help="rank by the dense vectors (query instruction), by the keyword index (BM25 of the raw query), or "
        "both fused; default: hybrid on a collection ingested with --hybrid, dense elsewhere",
    )
    search.add_argument(
        "--fusion",
        choices=("rrf", "dbsf"),
        default="rrf",
        help="how --mode hybrid fuses its two lists: reciprocal ranks (rrf, default) or normalized scores (dbsf)",
    )
    search.add_argument(
        "--group-by-parent",
        action="store_true",
        help="one hit per document of a collection ingested with --chunk-tokens: each document's best window "
        "(grouped by the parent_id metadata; a record without one is its own document)",
    )
    search.add_argument("--json", action="store_true", help="one JSON object per hit")
    search.add_argument("--quiet", action="store_true", help="no progress bars (transformers' weight loading)")
    search.set_defaults(func=_search)


class _LocalEngine:
    """The single-process engine (``instructor.engines`` entry point ``local``)."""

    description = "this process"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """None of its own: ``ingest``'s options are this engine's."""

    def run(self, args: argparse.Namespace, *, model: str, store: str) -> int:
        """See :func:`ingest_local`."""
        return ingest_local(args, model=model, store=store)


#: The ``local`` engine.
LOCAL_ENGINE = _LocalEngine()
