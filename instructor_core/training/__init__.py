"""Contrastive refit of instruction-conditioned encoders (the INSTRUCTOR training recipe).

Rows are (query, positive, hard negatives), each side with its instruction; every batch is drawn
from one task with no text twice; the loss is InfoNCE over cosine similarities; gradient caching
makes large batches fit small memory. Training needs only the core; the ``train`` extra
(``pip install -e ".[train]"`` from a checkout) adds scikit-learn for the classification evaluation.

    from instructor_core.training import TrainConfig, read_rows, train
    result = train(encoder, read_rows("rows.jsonl"), TrainConfig(output_dir="out", epochs=2))
"""

from __future__ import annotations

from instructor_core.training.batching import task_batches
from instructor_core.training.data import (
    DataError,
    TrainingRow,
    read_rows,
    rows_from_beir,
    rows_from_classification,
    rows_from_sts,
    write_rows,
)
from instructor_core.training.gradcache import contrastive_step
from instructor_core.training.loss import InfoNCELoss
from instructor_core.training.mining import mine_hard_negatives
from instructor_core.training.trainer import TrainConfig, TrainResult, prepare_encoder, train

__all__ = [
    "DataError",
    "InfoNCELoss",
    "TrainConfig",
    "TrainResult",
    "TrainingRow",
    "contrastive_step",
    "mine_hard_negatives",
    "prepare_encoder",
    "read_rows",
    "rows_from_beir",
    "rows_from_classification",
    "rows_from_sts",
    "task_batches",
    "train",
    "write_rows",
]
