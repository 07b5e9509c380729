"""`instructor embed` writes the same vectors as the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instructor_core.cli import main


def test_embed_text_file_to_npy(tmp_path, tiny_t5_path, tiny_t5_encoder):
    texts = ["first line", "  second line with spaces  ", ""]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    code = main(
        [
            "embed",
            str(source),
            "-o",
            str(out),
            "--model",
            str(tiny_t5_path),
            "--kind",
            "query",
            "--instruction",
            "Represent the question: ",
            "--quiet",
        ]
    )
    assert code == 0
    vectors = np.load(out)
    assert np.allclose(vectors, tiny_t5_encoder.encode_queries(texts, "Represent the question: "), atol=1e-6)


def test_embed_jsonl_field_to_jsonl(tmp_path, tiny_t5_path, tiny_t5_encoder):
    rows = [{"id": "a", "body": "cell protein"}, {"id": "b", "body": "river mountain"}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["embed", str(source), "-o", str(out), "--model", str(tiny_t5_path), "--field", "body", "--quiet"]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["id"] for w in written] == ["a", "b"]
    expected = tiny_t5_encoder.encode_documents(["cell protein", "river mountain"])
    assert np.allclose(np.array([w["vector"] for w in written]), expected, atol=1e-6)


def test_embed_bad_jsonl_line_names_line(tmp_path, tiny_t5_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "ok"}\n{"text": 3}\n', encoding="utf-8")
    assert main(["embed", str(source), "-o", str(tmp_path / "o.npy"), "--model", str(tiny_t5_path)]) == 2
    assert "in.jsonl:2" in capsys.readouterr().err


def test_cli_help_lists_embed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "embed" in capsys.readouterr().out
