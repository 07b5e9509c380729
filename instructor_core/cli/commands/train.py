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
from typing import TYPE_CHECKING

from instructor_core.cli.commands.options import add_batch_size_option, add_model_options, load_encoder, positive_int
from instructor_core.errors import InputError

if TYPE_CHECKING:
    from instructor_core.model.encoder import InstructorEncoder

__all__ = ["register"]


def _make_rows(args: argparse.Namespace) -> int:
    from instructor_core.training import rows_from_beir, rows_from_classification, rows_from_sts, write_rows

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
    from instructor_core.training import mine_hard_negatives, read_rows, rows_from_beir, write_rows

    if (args.beir is None) == (args.rows is None):
        raise InputError("give exactly one of --beir FOLDER or --rows FILE")
    corpus = None
    if args.beir is not None:
        from instructor_core.evaluation import load_beir

        rows = rows_from_beir(
            args.beir,
            args.split,
            query_instruction=args.query_instruction or "",
            document_instruction=args.document_instruction or "",
        )
        corpus = [t for t in load_beir(args.beir, args.split).corpus.values() if t.strip()]
    else:
        rows = read_rows(args.rows)
    encoder = load_encoder(args)
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
    from instructor_core.training import TrainConfig, read_rows, train

    rows = [row for path in args.data for row in read_rows(path)]
    encoder = load_encoder(args)
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
        instructions=instructions,
    )
    on_epoch_end = None
    if args.eval_beir is not None or args.eval_sts is not None or args.save_epochs:

        def on_epoch_end(epoch: int, model: InstructorEncoder) -> dict:
            from instructor_core.evaluation import evaluate_retrieval, evaluate_sts

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
    parser = subparsers.add_parser(
        "train",
        help="contrastive refit on JSONL rows (INSTRUCTOR recipe)",
        description="Refit a model on training rows (JSONL, MEDI layout: query, pos, neg with their "
        "instructions) with an in-batch InfoNCE loss, one task per batch; saves a sentence-transformers "
        "folder under OUTPUT/model and a checkpoint to resume from.",
    )
    add_model_options(parser, required_model=True, inference=False)
    parser.add_argument("--data", nargs="+", required=True, help="JSONL row files (MEDI layout)")
    parser.add_argument("--output", required=True, help="output folder (checkpoint.pt, model/)")
    parser.add_argument("--epochs", type=positive_int, default=1, help="passes over the rows (default: 1)")
    parser.add_argument(
        "--train-batch-size", type=positive_int, default=32, help="rows (triples) per optimizer step (default: 32)"
    )
    add_batch_size_option(parser)
    parser.add_argument("--lr", type=float, default=2e-5, help="peak AdamW learning rate (default: 2e-5)")
    parser.add_argument(
        "--weight-decay", type=float, default=0.01, help="AdamW weight decay, not on biases and LayerNorm (0.01)"
    )
    parser.add_argument(
        "--warmup-ratio", type=float, default=0.1, help="share of steps with linear warmup, then linear decay (0.1)"
    )
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm; 0 turns it off")
    parser.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature (default: 0.05)")
    parser.add_argument("--symmetric", action="store_true", help="add the positive -> query loss term")
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        help="gradient caching: texts per forward pass in training (default: no caching)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of batches, dropout and initialisation (0)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=0, help="steps between checkpoints (default 0: at epoch ends only)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast where the device supports it")
    parser.add_argument(
        "--max-time-s", type=float, default=None, help="stop (checkpoint and save) after this many seconds"
    )
    parser.add_argument("--query-instruction", default=None, help="query instruction saved with the model")
    parser.add_argument("--document-instruction", default=None, help="document instruction saved with the model")
    parser.add_argument(
        "--save-epochs", action="store_true", help="also save the model after each epoch (OUTPUT/epoch-N/)"
    )
    parser.add_argument("--eval-beir", default=None, help="BEIR folder to score after each epoch (nDCG@10)")
    parser.add_argument("--eval-split", default="test", help="split of --eval-beir (default: test)")
    parser.add_argument("--eval-sts", default=None, help="STS file to score after each epoch (Spearman)")
    parser.add_argument(
        "--eval-sts-instruction", default=None, help="instruction for --eval-sts (default: the model's document one)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_train)

    mine = subparsers.add_parser(
        "mine-negatives",
        help="add hard negatives to rows with any encoder",
        description="Rank a corpus for each row's query and take negatives from a band of ranks "
        "(--start to --end), skipping the row's positives; writes the rows with their negatives.",
    )
    add_model_options(mine, required_model=True)
    add_batch_size_option(mine)
    mine.add_argument("--beir", default=None, help="BEIR folder: rows from its qrels, negatives from its corpus")
    mine.add_argument("--split", default="train", help="split of --beir (default: train)")
    mine.add_argument("--rows", default=None, help="JSONL rows; the corpus is their positives")
    mine.add_argument("--query-instruction", default=None, help="query instruction of rows made from --beir")
    mine.add_argument(
        "--document-instruction", default=None, help="document instruction of the rows and of the ranking"
    )
    mine.add_argument("--start", type=int, default=10, help="first rank (0-based) that may give a negative (10)")
    mine.add_argument("--end", type=int, default=50, help="rank after the last that may give a negative (50)")
    mine.add_argument("--num", type=positive_int, default=1, help="negatives per row (default: 1)")
    mine.add_argument(
        "--rank-without-instructions",
        action="store_true",
        help="rank bare texts (a base model trained without instructions); rows still get the instructions",
    )
    mine.add_argument("--output", required=True, help="JSONL file for the rows with negatives")
    mine.add_argument("--quiet", action="store_true", help="no progress bar")
    mine.set_defaults(func=_mine)

    make = subparsers.add_parser(
        "make-rows",
        help="training rows from BEIR, STS or labelled CSV data",
        description="Write training rows (JSONL, MEDI layout) from a BEIR folder (query -> relevant "
        "document), an STS file (pairs scored at least --min-score) or a labelled CSV (same label "
        "positive, another label negative).",
    )
    make.add_argument("kind", choices=["beir", "sts", "classification"], help="what --input holds")
    make.add_argument("--input", required=True, help="BEIR folder, STS file or CSV (text,category)")
    make.add_argument("--output", required=True, help="JSONL file for the rows")
    make.add_argument("--instruction", default="", help="sts, classification: the instruction on every side")
    make.add_argument("--query-instruction", default=None, help="beir: the queries' instruction")
    make.add_argument("--document-instruction", default=None, help="beir: the documents' instruction")
    make.add_argument("--split", default="train", help="beir: the qrels split (default: train)")
    make.add_argument("--min-score", type=float, default=4.0, help="sts: lowest gold score of a positive (4.0)")
    make.add_argument(
        "--task", default=None, help="task name of the rows (default: the BEIR folder's name, sts, classification)"
    )
    make.add_argument("--seed", type=int, default=0, help="classification: seed of the draws (default: 0)")
    make.set_defaults(func=_make_rows)
