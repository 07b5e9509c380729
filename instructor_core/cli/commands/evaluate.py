"""``instructor eval retrieval|sts|classification``: score a model on real data, print JSON."""

from __future__ import annotations

import argparse
import json

from instructor_core.cli.commands.options import add_batch_size_option, add_model_options, load_encoder, positive_int

__all__ = ["register"]


def _retrieval(args: argparse.Namespace) -> dict:
    from instructor_core.evaluation import evaluate_retrieval

    return evaluate_retrieval(
        load_encoder(args),
        args.data,
        args.split,
        query_instruction=args.query_instruction,
        document_instruction=args.document_instruction,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )


def _sts(args: argparse.Namespace) -> dict:
    from instructor_core.evaluation import evaluate_sts

    return evaluate_sts(
        load_encoder(args),
        args.data,
        instruction=args.instruction,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )


def _classification(args: argparse.Namespace) -> dict:
    from instructor_core.evaluation.classification import evaluate_classification

    return evaluate_classification(
        load_encoder(args),
        args.train,
        args.test,
        instruction=args.instruction,
        max_per_label=args.max_per_label,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )


def _run(args: argparse.Namespace) -> int:
    scores = {"retrieval": _retrieval, "sts": _sts, "classification": _classification}[args.task](args)
    line = json.dumps({"task": args.task, "model": str(args.model), **scores})
    print(line)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` with its three tasks."""
    parser = subparsers.add_parser(
        "eval",
        help="score a model: retrieval (BEIR), sts, classification",
        description="Score a model on real data and print one JSON line with the scores.",
    )
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, text in (
        ("retrieval", "nDCG@10, Recall@100, MRR@10 on a BEIR folder"),
        ("sts", "Spearman of cosine on an STS file"),
        ("classification", "logistic regression accuracy on frozen vectors"),
    ):
        sub = tasks.add_parser(name, help=text, description=f"{text}; prints one JSON line with the scores.")
        add_model_options(sub, required_model=True)
        add_batch_size_option(sub)
        sub.add_argument("--output", default=None, help="append the JSON line to this file")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "retrieval":
            sub.add_argument("--data", required=True, help="BEIR folder")
            sub.add_argument("--split", default="test", help="qrels split to score (default: test)")
            sub.add_argument("--query-instruction", default=None, help="query instruction (default: the model's own)")
            sub.add_argument(
                "--document-instruction", default=None, help="document instruction (default: the model's own)"
            )
        elif name == "sts":
            sub.add_argument("--data", required=True, help="STS file")
            sub.add_argument("--instruction", default=None, help="default: the model's document instruction")
        else:
            sub.add_argument("--train", required=True, help="train CSV (text,category)")
            sub.add_argument("--test", required=True, help="test CSV (text,category)")
            sub.add_argument("--instruction", default=None, help="default: the model's query instruction")
            sub.add_argument(
                "--max-per-label", type=positive_int, default=None, help="subsample the train set to N texts per label"
            )
        sub.set_defaults(func=_run)
