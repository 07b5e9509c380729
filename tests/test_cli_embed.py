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


@pytest.mark.parametrize("name", ["q.csv", "q", "q.npy.txt"])
def test_embed_refuses_an_unknown_output_suffix(tmp_path, name, capsys):
    # Before: out/q.csv was written as out/q.csv.npy while the summary said out/q.csv.
    source = tmp_path / "in.txt"
    source.write_text("a text\n", encoding="utf-8")
    out = tmp_path / "out" / name
    assert main(["embed", str(source), "-o", str(out), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("instructor embed: error: -o ")
    assert ".npy" in err and ".jsonl" in err and ".ndjson" in err
    assert not (tmp_path / "out").exists()  # refused before loading the model or writing anything


@pytest.mark.parametrize("name", ["v.npy", "v.jsonl", "v.ndjson", "v.NPY", "v.JSONL"])
def test_embed_output_lands_where_named(tmp_path, tiny_t5_path, name, capsys):
    source = tmp_path / "in.txt"
    source.write_text("a text\nanother\n", encoding="utf-8")
    out = tmp_path / name
    assert main(["embed", str(source), "-o", str(out), "--model", str(tiny_t5_path)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("v.")] == [name]
    assert f"to {out}" in capsys.readouterr().err


# ------------------------------------------------------------------------ issue 24: #4, #5, newcomer #5
def _embed(source, out, model, *extra):
    return main(["embed", str(source), "-o", str(out), "--model", str(model), "--quiet", *extra])


@pytest.mark.parametrize("how", ["same", "relative", "hard link", "symlink"])
def test_embed_refuses_an_output_that_is_its_input(tmp_path, tiny_t5_path, how, capsys, monkeypatch):
    source = tmp_path / "f.jsonl"
    source.write_text('{"id": "a", "text": "cell"}\n', encoding="utf-8")
    out = {"same": source, "relative": tmp_path / "sub" / ".." / "f.jsonl"}.get(how, tmp_path / "o.jsonl")
    (tmp_path / "sub").mkdir()
    if how == "hard link":
        import os

        os.link(source, out)
    elif how == "symlink":
        out.symlink_to(source)
    assert _embed(source, out, tiny_t5_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input file itself" in err
    assert source.read_text(encoding="utf-8") == '{"id": "a", "text": "cell"}\n'


def test_embed_into_a_missing_folder_is_refused_not_created(tmp_path, tiny_t5_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("a text\n", encoding="utf-8")
    assert _embed(source, tmp_path / "nonexistent" / "dir" / "x.npy", tiny_t5_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("name", ["x.npy", "x.jsonl"])
def test_embed_onto_a_full_disk_is_one_line_and_leaves_the_old_output(tmp_path, tiny_t5_path, name, capsys,
                                                                       monkeypatch):  # fmt: skip
    import errno
    import os

    source = tmp_path / "in.txt"
    source.write_text("a text\nanother\n", encoding="utf-8")
    out = tmp_path / name
    out.write_bytes(b"old output")
    real_fsync = os.fsync

    def full(fd):  # the write reaches the disk at fsync: a full disk answers ENOSPC there
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert _embed(source, out, tiny_t5_path) == 2
    monkeypatch.setattr(os, "fsync", real_fsync)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err, err
    assert out.read_bytes() == b"old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.txt", name])  # no temporary file left


def test_embed_to_stdout_writes_jsonl(tmp_path, tiny_t5_path, tiny_t5_encoder, capsys):
    source = tmp_path / "in.txt"
    source.write_text("cell protein\nriver mountain\n", encoding="utf-8")
    assert _embed(source, "-", tiny_t5_path) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["0", "1"]
    expected = tiny_t5_encoder.encode_documents(["cell protein", "river mountain"])
    assert np.allclose(np.array([r["vector"] for r in rows]), expected, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_embed_upper_case_npy_is_a_matrix_under_that_name(tmp_path, tiny_t5_path, tiny_t5_encoder):
    source = tmp_path / "in.txt"
    source.write_text("cell protein\n", encoding="utf-8")
    assert _embed(source, tmp_path / "q.NPY", tiny_t5_path) == 0
    assert np.allclose(np.load(tmp_path / "q.NPY"), tiny_t5_encoder.encode_documents(["cell protein"]), atol=1e-6)
