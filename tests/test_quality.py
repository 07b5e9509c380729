"""The real all-MiniLM-L6-v2 reproduces its published STS-B score through this encoder."""

from __future__ import annotations

import pytest

from instructor_core.evaluation import evaluate_sts, load_sts


@pytest.mark.slow
def test_minilm_stsb_test_spearman_matches_published(minilm_encoder, data_dir):
    path = data_dir / "stsb" / "sts-test.csv"
    assert len(load_sts(path)) == 1379
    result = evaluate_sts(minilm_encoder, path, batch_size=64)
    assert result["spearman"] == pytest.approx(0.8203, abs=0.002)
