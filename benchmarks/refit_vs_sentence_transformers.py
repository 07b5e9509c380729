"""Domain refit: ours (instructor_core.training) against sentence-transformers' own trainer.

Both start from the same model, train on the same JSONL rows (query, positive, first hard negative,
with their instructions) for the same epochs, batch size, learning rate, warmup and temperature
(MultipleNegativesRankingLoss with scale 20 = InfoNCE with temperature 0.05), and are scored on
the same BEIR split. Both exclude instruction tokens from pooling (sentence-transformers' Pooling
with ``include_prompt=False``). Prints one JSON object: nDCG@10 and wall time of each, and the
ratios ours / theirs.

    python benchmarks/refit_vs_sentence_transformers.py --model MINILM_FOLDER \\
        --rows runs/scifact_train_mined.jsonl --beir ../shared/data/scifact --epochs 1 --out runs/bench

Needs sentence-transformers, datasets and accelerate (test-only references, not runtime deps).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from instructor_core import Instructions, InstructorEncoder
from instructor_core.evaluation import evaluate_retrieval
from instructor_core.training import TrainConfig, read_rows, train

__all__ = ["main"]


def _ours(args: argparse.Namespace, rows, instructions: Instructions) -> tuple[float, Path]:
    encoder = InstructorEncoder.from_pretrained(args.model, device="cpu", max_length=args.max_length)
    config = TrainConfig(
        output_dir=args.out / "ours",
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        temperature=args.temperature,
        seed=args.seed,
        instructions=instructions,
        chunk_size=args.chunk_size,
    )
    started = time.perf_counter()
    result = train(encoder, rows, config)
    return time.perf_counter() - started, result.model_path


def _theirs(args: argparse.Namespace, rows, instructions: Instructions) -> tuple[float, Path]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.training_args import BatchSamplers

    model = SentenceTransformer(str(args.model), device="cpu")
    model.max_seq_length = args.max_length or model.max_seq_length
    model[1].include_prompt = False  # instructions out of pooling, as ours
    with_neg = all(r.neg for r in rows)
    data = {"anchor": [r.query[1] for r in rows], "positive": [r.pos[1] for r in rows]}
    prompts = {"anchor": instructions.query, "positive": instructions.document}
    if with_neg:
        data["negative"] = [r.neg[0][1] for r in rows]
        prompts["negative"] = instructions.document
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(args.out / "theirs_ckpt"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,  # both exempt biases and LayerNorm weights
        warmup_steps=args.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the steps
        seed=args.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=prompts,
        save_strategy="no",
        logging_steps=10,
        report_to=[],
        use_cpu=True,
    )
    loss = losses.MultipleNegativesRankingLoss(model, scale=1.0 / args.temperature)
    trainer = SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=Dataset.from_dict(data), loss=loss
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    folder = args.out / "theirs"
    model.prompts = {"query": instructions.query, "document": instructions.document}
    model.save(str(folder))
    return seconds, folder


def main() -> None:
    """Run both refits and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rows", type=Path, required=True, help="mined JSONL rows (one task)")
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ours-model", type=Path, default=None, help="reuse a finished refit of ours (skip ours)")
    parser.add_argument("--ours-seconds", type=float, default=None, help="its training wall time (with --ours-model)")
    parser.add_argument("--ours-ndcg", type=float, default=None, help="its nDCG@10, if already measured")
    args = parser.parse_args()
    rows = read_rows(args.rows)
    instructions = Instructions(query=rows[0].query[0], document=rows[0].pos[0])
    if args.ours_model is not None:
        if args.ours_seconds is None:
            parser.error("--ours-model needs --ours-seconds (its training wall time)")
        ours_s, ours_path = args.ours_seconds, args.ours_model
    else:
        ours_s, ours_path = _ours(args, rows, instructions)
    theirs_s, theirs_path = _theirs(args, rows, instructions)
    scores = {}
    if args.ours_model is not None and args.ours_ndcg is not None:
        scores["ours"] = args.ours_ndcg
    for name, path in (("ours", ours_path), ("theirs", theirs_path)):
        if name in scores:
            continue
        encoder = InstructorEncoder.from_pretrained(path, device="cpu")
        scores[name] = evaluate_retrieval(encoder, args.beir, args.split)["ndcg@10"]
    report = {
        "ours": {"ndcg@10": scores["ours"], "train_seconds": ours_s},
        "sentence_transformers": {"ndcg@10": scores["theirs"], "train_seconds": theirs_s},
        "ndcg_ratio_ours_over_theirs": scores["ours"] / scores["theirs"],
        "time_ratio_ours_over_theirs": ours_s / theirs_s,
    }
    print(json.dumps(report, indent=2))
    print(f"\n| refit ({args.epochs} epochs) | SciFact {args.split} nDCG@10 | training wall time s |")
    print("|---|---|---|")
    print(f"| ours (instructor train) | {scores['ours']:.4f} | {ours_s:.0f} |")
    print(f"| sentence-transformers' trainer (MNRL) | {scores['theirs']:.4f} | {theirs_s:.0f} |")
    ratios = report["ndcg_ratio_ours_over_theirs"], report["time_ratio_ours_over_theirs"]
    print(f"| ratio ours / theirs | {ratios[0]:.3f} | {ratios[1]:.2f} |")


if __name__ == "__main__":
    main()
