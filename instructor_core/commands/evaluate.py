"""``instructor eval retrieval|sts|classification``: score a model on real data, print JSON."""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def _encoder(args: argparse.Namespace):
    from ..encoder import InstructorEncoder

    return InstructorEncoder.from_pretrained(args.model, device=args.device, max_length=args.max_length)


def _retrieval(args: argparse.Namespace) -> dict:
    from ..evaluation import evaluate_retrieval

    return evaluate_retrieval(
        _encoder(args),
        args.data,
        args.split,
        query_instruction=args.query_instruction,
        document_instruction=args.document_instruction,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )


def _sts(args: argparse.Namespace) -> dict:
    from ..evaluation import evaluate_sts

    return evaluate_sts(
        _encoder(args),
        args.data,
        instruction=args.instruction,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )


def _classification(args: argparse.Namespace) -> dict:
    from ..evaluation.classification import evaluate_classification

    return evaluate_classification(
        _encoder(args),
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
    parser = subparsers.add_parser("eval", help="score a model: retrieval (BEIR), sts, classification")
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, text in (
        ("retrieval", "nDCG@10, Recall@100, MRR@10 on a BEIR folder"),
        ("sts", "Spearman of cosine on an STS file"),
        ("classification", "logistic regression accuracy on frozen vectors"),
    ):
        sub = tasks.add_parser(name, help=text)
        sub.add_argument("--model", required=True)
        sub.add_argument("--device", default=None)
        sub.add_argument("--max-length", type=int, default=None)
        sub.add_argument("--batch-size", type=int, default=32)
        sub.add_argument("--output", default=None, help="append the JSON line to this file")
        sub.add_argument("--quiet", action="store_true")
        if name == "retrieval":
            sub.add_argument("--data", required=True, help="BEIR folder")
            sub.add_argument("--split", default="test")
            sub.add_argument("--query-instruction", default=None, help="default: the model's own")
            sub.add_argument("--document-instruction", default=None, help="default: the model's own")
        elif name == "sts":
            sub.add_argument("--data", required=True, help="STS file")
            sub.add_argument("--instruction", default=None, help="default: the model's document instruction")
        else:
            sub.add_argument("--train", required=True, help="train CSV (text,category)")
            sub.add_argument("--test", required=True, help="test CSV (text,category)")
            sub.add_argument("--instruction", default=None, help="default: the model's query instruction")
            sub.add_argument("--max-per-label", type=int, default=None, help="subsample the train set")
        sub.set_defaults(func=_run)
