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


@pytest.mark.parametrize("name", ["q.csv", "q", "q.NPY", "q.npy.txt"])
def test_embed_refuses_an_unknown_output_suffix(tmp_path, name, capsys):
    # Before: out/q.csv was written as out/q.csv.npy while the summary said out/q.csv.
    source = tmp_path / "in.txt"
    source.write_text("a text\n", encoding="utf-8")
    out = tmp_path / "out" / name
    assert main(["embed", str(source), "-o", str(out), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("instructor embed: error: -o ")
    assert ".npy" in err and ".jsonl" in err
    assert not (tmp_path / "out").exists()  # refused before loading the model or writing anything


@pytest.mark.parametrize("name", ["v.npy", "v.jsonl", "v.ndjson"])
def test_embed_output_lands_where_named(tmp_path, tiny_t5_path, name, capsys):
    source = tmp_path / "in.txt"
    source.write_text("a text\nanother\n", encoding="utf-8")
    out = tmp_path / name
    assert main(["embed", str(source), "-o", str(out), "--model", str(tiny_t5_path)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("v.")] == [name]
    assert f"to {out}" in capsys.readouterr().err
