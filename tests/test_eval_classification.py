"""Classification accuracy of frozen vectors (logistic regression)."""

from __future__ import annotations

import pytest

from instructor_core.evaluation import evaluate_classification, load_classification_csv


class _KeywordEncoder:
    """A stand-in encoder whose vectors count two keywords: a perfectly separable problem."""

    def __init__(self):
        self.seen_instructions = []

    def encode_queries(self, texts, instruction=None, *, batch_size=32, show_progress=False):
        import numpy as np

        self.seen_instructions.append(instruction)
        return np.array([[t.count("card"), t.count("money"), 1.0] for t in texts], dtype=np.float32)


def test_separable_labels_score_perfectly_and_instruction_is_passed():
    train = [(f"card {i} card", "card") for i in range(10)] + [(f"money {i} money", "money") for i in range(10)]
    test = [("my card", "card"), ("money please", "money"), ("card card", "card")]
    encoder = _KeywordEncoder()
    scores = evaluate_classification(encoder, train, test, instruction="Represent the bank query: ")
    assert scores["accuracy"] == 1.0 and scores["f1_macro"] == 1.0
    assert scores["train"] == 20 and scores["test"] == 3
    assert encoder.seen_instructions == ["Represent the bank query: "] * 2
    half = evaluate_classification(encoder, train, [("card", "money"), ("money", "money")])
    assert half["accuracy"] == 0.5
    sub = evaluate_classification(encoder, train, test, max_per_label=3)
    assert sub["train"] == 6


def test_csv_reader_names_bad_lines(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,category\nhello,a\n,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="data.csv:3: empty text or label"):
        load_classification_csv(path)
    path.write_text("sentence,label\nhello,a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column 'text'"):
        load_classification_csv(path)


@pytest.mark.slow
def test_banking77_with_minilm_subsample(minilm_encoder, data_dir):
    """A real figure: 16 train texts per label, 600 test texts; MiniLM vectors are far above chance (1/77)."""
    test = load_classification_csv(data_dir / "banking77" / "test.csv")[::5][:600]
    scores = evaluate_classification(
        minilm_encoder, data_dir / "banking77" / "train.csv", test, instruction="", max_per_label=16
    )
    assert scores["train"] == 16 * 77
    assert scores["accuracy"] > 0.6
