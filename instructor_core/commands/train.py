"""``instructor train``, ``instructor mine-negatives`` and ``instructor make-rows``: the refit recipe.

    instructor make-rows sts --input stsb/sts-train.csv --instruction "..." --output sts.jsonl
    instructor mine-negatives --model M --beir scifact --split train \\
        --query-instruction "..." --document-instruction "..." --output scifact.jsonl
    instructor train --model M --data scifact.jsonl sts.jsonl --output out/ --epochs 2 \\
        --query-instruction "..." --document-instruction "..." --eval-beir scifact
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def _load_encoder(args: argparse.Namespace):
    from ..encoder import InstructorEncoder

    return InstructorEncoder.from_pretrained(args.model, device=args.device, max_length=args.max_length)


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass when encoding")


def _make_rows(args: argparse.Namespace) -> int:
    from ..training import rows_from_beir, rows_from_classification, rows_from_sts, write_rows

    if args.kind == "sts":
        rows = rows_from_sts(
            args.input, instruction=args.instruction, min_score=args.min_score, task=args.task or "sts"
        )
    elif args.kind == "classification":
        rows = rows_from_classification(
            args.input, instruction=args.instruction, task=args.task or "classification", seed=args.seed
        )
    else:
        rows = rows_from_beir(
            args.input,
            args.split,
            query_instruction=args.query_instruction or "",
            document_instruction=args.document_instruction or "",
            task=args.task,
        )
    count = write_rows(rows, args.output)
    print(f"wrote {count} rows to {args.output}", file=sys.stderr)
    return 0


def _mine(args: argparse.Namespace) -> int:
    from ..training import mine_hard_negatives, read_rows, rows_from_beir, write_rows

    if (args.beir is None) == (args.rows is None):
        raise ValueError("give exactly one of --beir FOLDER or --rows FILE")
    corpus = None
    if args.beir is not None:
        from ..evaluation import load_beir

        rows = rows_from_beir(
            args.beir,
            args.split,
            query_instruction=args.query_instruction or "",
            document_instruction=args.document_instruction or "",
        )
        corpus = [t for t in load_beir(args.beir, args.split).corpus.values() if t.strip()]
    else:
        rows = read_rows(args.rows)
    encoder = _load_encoder(args)
    mined = mine_hard_negatives(
        encoder,
        rows,
        corpus,
        document_instruction=args.document_instruction,
        start=args.start,
        end=args.end,
        num_negatives=args.num,
        rank_with_instructions=not args.rank_without_instructions,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )
    count = write_rows(mined, args.output)
    print(f"wrote {count} rows with {sum(len(r.neg) for r in mined)} negatives to {args.output}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..instructions import Instructions
    from ..training import TrainConfig, read_rows, train

    rows = [row for path in args.data for row in read_rows(path)]
    encoder = _load_encoder(args)
    instructions = None
    if args.query_instruction is not None or args.document_instruction is not None:
        instructions = encoder.instructions.replace(query=args.query_instruction, document=args.document_instruction)
    config = TrainConfig(
        output_dir=Path(args.output),
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm if args.max_grad_norm > 0 else None,
        temperature=args.temperature,
        symmetric=args.symmetric,
        chunk_size=args.chunk_size,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        bf16=args.bf16,
        max_time_s=args.max_time_s,
        show_progress=not args.quiet,
        instructions=instructions if isinstance(instructions, Instructions) else None,
    )
    on_epoch_end = None
    if args.eval_beir is not None or args.eval_sts is not None or args.save_epochs:

        def on_epoch_end(epoch, model):
            from ..evaluation import evaluate_retrieval, evaluate_sts

            metrics: dict = {"epoch": epoch}
            if args.save_epochs:
                metrics["model"] = str(model.save_pretrained(Path(args.output) / f"epoch-{epoch}"))
            if args.eval_beir is not None:
                scores = evaluate_retrieval(model, args.eval_beir, args.eval_split, batch_size=args.batch_size)
                metrics["ndcg@10"] = scores["ndcg@10"]
            if args.eval_sts is not None:
                metrics["sts_spearman"] = evaluate_sts(
                    model, args.eval_sts, instruction=args.eval_sts_instruction, batch_size=args.batch_size
                )["spearman"]
            print(json.dumps(metrics), file=sys.stderr)
            return metrics

    result = train(encoder, rows, config, resume=args.resume, on_epoch_end=on_epoch_end)
    summary = {
        "model": str(result.model_path),
        "rows": len(rows),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "stopped_early": result.stopped_early,
        "first_loss": result.losses[0] if result.losses else None,
        "last_loss": result.losses[-1] if result.losses else None,
        "epoch_metrics": result.epoch_metrics,
    }
    (Path(args.output) / "train_summary.json").write_text(
        json.dumps({**summary, "losses": result.losses}, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(summary, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``mine-negatives`` and ``make-rows``."""
    parser = subparsers.add_parser("train", help="contrastive refit on JSONL rows (INSTRUCTOR recipe)")
    _add_model_args(parser)
    parser.add_argument("--data", nargs="+", required=True, help="JSONL row files (MEDI layout)")
    parser.add_argument("--output", required=True, help="output folder (checkpoint.pt, model/)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-batch-size", type=int, default=32, help="rows (triples) per training batch")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--symmetric", action="store_true", help="add the positive -> query loss term")
    parser.add_argument("--chunk-size", type=int, default=None, help="GradCache chunk (texts per pass)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--max-time-s", type=float, default=None, help="wall-clock budget for training")
    parser.add_argument("--query-instruction", default=None, help="query instruction saved with the model")
    parser.add_argument("--document-instruction", default=None, help="document instruction saved with the model")
    parser.add_argument(
        "--save-epochs", action="store_true", help="also save the model after each epoch (OUTPUT/epoch-N/)"
    )
    parser.add_argument("--eval-beir", default=None, help="BEIR folder to score after each epoch (nDCG@10)")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--eval-sts", default=None, help="STS file to score after each epoch")
    parser.add_argument("--eval-sts-instruction", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_train)

    mine = subparsers.add_parser("mine-negatives", help="add hard negatives to rows with any encoder")
    _add_model_args(mine)
    mine.add_argument("--beir", default=None, help="BEIR folder: rows from its qrels, negatives from its corpus")
    mine.add_argument("--split", default="train")
    mine.add_argument("--rows", default=None, help="JSONL rows; the corpus is their positives")
    mine.add_argument("--query-instruction", default=None)
    mine.add_argument("--document-instruction", default=None)
    mine.add_argument("--start", type=int, default=10, help="first rank (0-based) that may give a negative")
    mine.add_argument("--end", type=int, default=50, help="rank after the last that may give a negative")
    mine.add_argument("--num", type=int, default=1, help="negatives per row")
    mine.add_argument(
        "--rank-without-instructions",
        action="store_true",
        help="rank bare texts (a base model trained without instructions); rows still get the instructions",
    )
    mine.add_argument("--output", required=True)
    mine.add_argument("--quiet", action="store_true")
    mine.set_defaults(func=_mine)

    make = subparsers.add_parser("make-rows", help="training rows from BEIR, STS or labelled CSV data")
    make.add_argument("kind", choices=["beir", "sts", "classification"])
    make.add_argument("--input", required=True, help="BEIR folder, STS file or CSV (text,category)")
    make.add_argument("--output", required=True)
    make.add_argument("--instruction", default="", help="instruction on every side (sts, classification)")
    make.add_argument("--query-instruction", default=None, help="beir")
    make.add_argument("--document-instruction", default=None, help="beir")
    make.add_argument("--split", default="train", help="beir")
    make.add_argument("--min-score", type=float, default=4.0, help="sts: lowest gold score of a positive")
    make.add_argument("--task", default=None)
    make.add_argument("--seed", type=int, default=0)
    make.set_defaults(func=_make_rows)
