"""`instructor collections`, missing stores, `search --queries`, re-running a failed first ingest, and
BEIR-shaped / folder corpora through `instructor ingest`, against embedded Chroma and Qdrant."""

from __future__ import annotations

import json

import pytest

from instructor_core import InstructorEncoder
from instructor_core.cli import build_parser, main
from tests.tiny_models import corpus_lines

Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "
KINDS = ["chroma", "qdrant"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def corpus(tmp_path):
    rows = [
        {"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"} for i, t in enumerate(corpus_lines(12))
    ]
    return write_jsonl(tmp_path / "corpus.jsonl", rows), rows


def ingest(corpus_path, store, model, collection="notes", *extra):
    args = ["ingest", str(corpus_path), "--store", store, "--collection", collection, "--model", str(model),
            "--document-instruction", D, "--query-instruction", Q, "--quiet", *extra]  # fmt: skip
    return main(args)


# ---------------------------------------------------------------------------------------------- collections
@pytest.mark.parametrize("kind", KINDS)
def test_collections_list_info_delete(kind, tmp_path, corpus, tiny_t5_path, capsys):
    store = f"{kind}:{tmp_path / 'db'}"
    assert ingest(corpus[0], store, tiny_t5_path, "notes") == 0
    assert ingest(corpus[0], store, tiny_t5_path, "alpha") == 0
    capsys.readouterr()

    assert main(["collections", "list", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["alpha", "12", "documents"], ["notes", "12", "documents"]]
    assert all(line.endswith(str(tiny_t5_path)) for line in lines)
    assert main(["collections", "list", "--store", store, "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["count"], r["model"]) for r in rows] == [("alpha", 12, str(tiny_t5_path)),
                                                                   ("notes", 12, str(tiny_t5_path))]  # fmt: skip

    dim = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu").dimension
    assert main(["collections", "info", "notes", "--store", store, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["query_instruction"], info["document_instruction"]) == (Q, D)
    assert (info["dimension"], info["count"], info["model"]) == (dim, 12, str(tiny_t5_path))
    assert info["created"] and info["created"][:2] == "20"
    assert {"fingerprint", "vectors"} <= set(info)
    assert main(["collections", "info", "notes", "--store", store]) == 0
    text = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert text["count"].strip() == "12" and text["dimension"].strip() == str(dim)
    assert text["document instruction"].strip() == repr(D) and text["model"].strip() == str(tiny_t5_path)
    assert {"fingerprint", "created", "query instruction"} <= set(text)

    # delete needs --yes; without it nothing goes and the line says why
    assert main(["collections", "delete", "notes", "--store", store]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "cannot be undone; add --yes" in err and "12 documents" in err
    assert main(["collections", "list", "--store", store, "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["collections", "delete", "notes", "--store", store, "--yes"]) == 0
    assert "deleted collection 'notes'" in capsys.readouterr().err
    assert main(["collections", "list", "--store", store]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["alpha"]
    # a missing collection names the ones there, for info, delete and search alike
    for args in (["collections", "info", "notes"], ["collections", "delete", "notes", "--yes"],
                 ["search", "x", "--collection", "notes"]):  # fmt: skip
        assert main([*args, "--store", store]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1
        assert "no collection 'notes'" in err and "(collections there: 'alpha')" in err


# ---------------------------------------------------------------------------------------------- missing store
@pytest.mark.parametrize("kind", KINDS)
def test_a_mistyped_store_path_creates_nothing(kind, tmp_path, tiny_t5_path, capsys):
    missing = tmp_path / "typo" / "db"
    store = f"{kind}:{missing}"
    commands = [
        ["search", "a query", "--store", store, "--collection", "notes"],
        ["collections", "list", "--store", store],
        ["collections", "info", "notes", "--store", store],
        ["collections", "delete", "notes", "--store", store, "--yes"],
    ]
    for args in commands:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.splitlines() == [f"instructor {args[0]}: error: no store at {missing}"], args
    assert not (tmp_path / "typo").exists()


def test_a_folder_that_is_not_a_chroma_store_is_left_alone(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    assert main(["collections", "list", "--store", f"chroma:{folder}"]) == 2
    assert "no store at" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


# ---------------------------------------------------------------------------------------------- search --queries
class CountingLoads:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = InstructorEncoder.from_pretrained.__func__

        def counted(cls, *args, **kwargs):
            self.calls += 1
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(InstructorEncoder, "from_pretrained", classmethod(counted))


@pytest.mark.parametrize("kind", KINDS)
def test_search_queries_file_loads_the_model_once(kind, tmp_path, corpus, tiny_t5_path, capsys, monkeypatch):
    store = f"{kind}:{tmp_path / 'db'}"
    assert ingest(corpus[0], store, tiny_t5_path) == 0
    texts = ["cell protein gene study", "the river runs to the sea", "a guitar plays music"]
    beir = write_jsonl(tmp_path / "queries.jsonl", [{"_id": f"q{i}", "text": t, "metadata": {}} for i, t in
                                                    enumerate(texts)])  # fmt: skip
    plain = tmp_path / "queries.txt"
    plain.write_text(texts[0] + "\n\n" + texts[1] + "\r\n" + texts[2] + "\n", encoding="utf-8")

    singles = []
    for text in texts:
        capsys.readouterr()
        assert main(["search", text, "--store", store, "--collection", "notes", "-k", "4", "--json"]) == 0
        singles.append([json.loads(x) for x in capsys.readouterr().out.splitlines()])

    loads = CountingLoads(monkeypatch)
    out = tmp_path / "results.jsonl"
    args = ["--store", store, "--collection", "notes", "-k", "4"]
    assert main(["search", "--queries", str(beir), "-o", str(out), *args]) == 0
    assert loads.calls == 1
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["query_id"], r["query"]) for r in rows] == [("q0", texts[0]), ("q1", texts[1]), ("q2", texts[2])]
    for row, single in zip(rows, singles, strict=True):
        assert [h["id"] for h in row["hits"]] == [h["id"] for h in single]
        assert [h["rank"] for h in row["hits"]] == [1, 2, 3, 4]
        assert [h["score"] for h in row["hits"]] == pytest.approx([h["score"] for h in single], abs=1e-5)
        assert row["hits"][0]["text"] == single[0]["text"] and row["hits"][0]["metadata"] == single[0]["metadata"]

    capsys.readouterr()
    assert main(["search", "--queries", str(plain), *args]) == 0  # to stdout; blank line skipped, \r\n dropped
    assert loads.calls == 2
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["query_id"], r["query"]) for r in rows] == [("1", texts[0]), ("3", texts[1]), ("4", texts[2])]
    assert [[h["id"] for h in r["hits"]] for r in rows] == [[h["id"] for h in s] for s in singles]


def test_search_queries_errors(tmp_path, corpus, tiny_t5_path, capsys):
    store = f"chroma:{tmp_path / 'db'}"
    assert ingest(corpus[0], store, tiny_t5_path) == 0
    args = ["--store", store, "--collection", "notes"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "q1", "text": "fine"}\n{"_id": "q2", "query": "wrong field"}\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["search", "--queries", str(bad), *args]) == 2
    assert f"{bad}:2: expected a JSON object with a string field 'text'" in capsys.readouterr().err
    assert main(["search", "one", "--queries", str(bad), *args]) == 2
    assert "give one QUERY or --queries FILE" in capsys.readouterr().err
    assert main(["search", *args]) == 2
    assert main(["search", "--queries", str(tmp_path / "none.txt"), *args]) == 2
    assert f"--queries {tmp_path / 'none.txt'} does not exist" in capsys.readouterr().err
    out = tmp_path / "no" / "run.jsonl"
    assert main(["search", "--queries", str(bad), "-o", str(out), *args]) == 2
    assert f"the folder {out.parent} does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- failed first ingest
@pytest.mark.parametrize("kind", KINDS)
def test_a_first_ingest_that_wrote_nothing_does_not_pin_the_instructions(kind, tmp_path, tiny_t5_path, capsys):
    store = f"{kind}:{tmp_path / 'db'}"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "text": 5}, {"id": "b", "text": "fine"}])
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "a", "text": "now text"}, {"id": "b", "text": "fine"}])
    assert ingest(bad, store, tiny_t5_path) == 2  # the first batch is refused: nothing written
    assert "text must be a str" in capsys.readouterr().err
    assert main(["collections", "info", "notes", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    new_q, new_d = "Represent the claim: ", "Represent the abstract: "
    rerun = ["ingest", str(good), "--store", store, "--collection", "notes", "--model", str(tiny_t5_path),
             "--document-instruction", new_d, "--query-instruction", new_q]  # fmt: skip
    assert main(rerun) == 0
    assert "was empty and made for another query_instruction, document_instruction" in capsys.readouterr().err
    assert main(["collections", "info", "notes", "--store", store, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["query_instruction"], info["document_instruction"], info["count"]) == (new_q, new_d, 2)
    # once it holds documents, other instructions are refused as before
    assert ingest(good, store, tiny_t5_path) == 2
    assert "instruction" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- corpora
@pytest.mark.parametrize("kind", KINDS)
def test_ingest_a_beir_corpus_as_it_is(kind, tmp_path, tiny_t5_path, capsys):
    rows = [{"_id": f"doc{i}", "title": f"Title {i}" if i != 1 else "", "text": t}
            for i, t in enumerate(corpus_lines(5))]  # fmt: skip
    path = write_jsonl(tmp_path / "corpus.jsonl", rows)
    store = f"{kind}:{tmp_path / 'db'}"
    assert ingest(path, store, tiny_t5_path, "beir", "--title-field", "title") == 0
    capsys.readouterr()
    assert main(["search", rows[0]["text"], "--store", store, "--collection", "beir", "-k", "5", "--json"]) == 0
    hits = {h["id"]: h for h in (json.loads(x) for x in capsys.readouterr().out.splitlines())}
    assert sorted(hits) == [f"doc{i}" for i in range(5)]
    assert hits["doc0"]["text"] == f"Title 0 {rows[0]['text']}"
    assert hits["doc1"]["text"] == rows[1]["text"]  # an empty title leaves the text alone
    # without --title-field the title stays metadata and the text is the text
    assert ingest(path, store, tiny_t5_path, "plain") == 0
    capsys.readouterr()
    assert main(["search", "x", "--store", store, "--collection", "plain", "-k", "5", "--json"]) == 0
    hits = {h["id"]: h for h in (json.loads(x) for x in capsys.readouterr().out.splitlines())}
    assert hits["doc0"]["text"] == rows[0]["text"] and hits["doc0"]["metadata"]["title"] == "Title 0"


@pytest.mark.parametrize("kind", KINDS)
def test_folder_ingest_globs_and_says_what_it_skipped(kind, tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("the river runs\n", encoding="utf-8")
    (folder / "sub" / "b.md").write_text("# music\n", encoding="utf-8")
    (folder / "sub" / "c.rst").write_text("Title\n=====\n", encoding="utf-8")
    (folder / "d.pdf").write_bytes(b"%PDF")
    store = f"{kind}:{tmp_path / 'db'}"
    base = ["--store", store, "--model", str(tiny_t5_path)]

    def ids(collection):
        capsys.readouterr()
        assert main(["search", "x", "--store", store, "--collection", collection, "-k", "9", "--json"]) == 0
        return sorted(json.loads(x)["id"] for x in capsys.readouterr().out.splitlines())

    assert main(["ingest", str(folder), "--collection", "default", *base]) == 0
    err = capsys.readouterr().err
    assert f"skipped 2 file(s) under {folder}:" in err
    assert "  d.pdf: does not match *.txt, *.md" in err and "  sub/c.rst: does not match *.txt, *.md" in err
    assert ids("default") == ["a.txt", "sub/b.md"]

    assert main(["ingest", str(folder), "--collection", "rst", "--glob", "*.rst", "--glob", "*.txt", *base]) == 0
    err = capsys.readouterr().err
    assert "skipped 2 file(s)" in err and "d.pdf" in err and "sub/b.md" in err
    assert ids("rst") == ["a.txt", "sub/c.rst"]

    assert main(["ingest", str(tmp_path / "nope.jsonl"), "--collection", "x", "--glob", "*.md", *base]) == 2
    assert main(["ingest", str(folder), "--collection", "x", "--title-field", "title", *base]) == 2
    assert "--title-field applies to JSONL, CSV or Parquet records" in capsys.readouterr().err
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "t"}])
    assert main(["ingest", str(corpus), "--collection", "x", "--glob", "*.md", *base]) == 2
    assert "--glob selects the files of a folder of text files" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- help
def test_every_store_option_has_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    parsers = [commands["ingest"], commands["search"], commands["collections"]]
    parsers += list(commands["collections"]._subparsers._group_actions[0].choices.values())
    missing = [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p in parsers
        for a in p._actions
        if not a.help and not isinstance(a, type(parser._actions[0]))  # -h/--help has argparse's own
    ]
    assert missing == []
    assert set(commands["collections"]._subparsers._group_actions[0].choices) == {"list", "info", "delete"}


# ---------------------------------------------------------------------------------------------- core pieces
def test_open_store_passes_create_only_to_factories_that_take_it(monkeypatch):
    from instructor_core.ingest import registry, stores

    calls = []

    def new_style(location, *, create=True):
        calls.append(("new", location, create))
        return "store"

    def old_style(location):
        calls.append(("old", location))
        return "store"

    class EntryPoint:
        def __init__(self, fn):
            self.fn = fn

        def load(self):
            return self.fn

    monkeypatch.setattr(registry, "store_schemes", lambda: {"new": EntryPoint(new_style), "old": EntryPoint(old_style)})
    stores.open_store("new:./a", create=False)
    stores.open_store("new:./b")
    stores.open_store("old:./c", create=False)
    assert calls == [("new", "./a", False), ("new", "./b", True), ("old", "./c")]


def test_replace_empty_collection_touches_only_an_empty_collection_of_ours(tiny_t5_encoder):
    from instructor_core.ingest.store_ops import replace_empty_collection
    from instructor_core.ingest.stores import CollectionInfo

    enc = tiny_t5_encoder
    fits = dict(model="m", query_instruction=enc.instructions.query, document_instruction=enc.instructions.document,
                dimension=enc.dimension)  # fmt: skip

    class FakeStore:
        def __init__(self, info):
            self.stored, self.deleted = info, []

        def list_collections(self):
            return [self.stored.name]

        def info(self, name):
            return self.stored

        def delete(self, name):
            self.deleted.append(name)

    cases = [  # (recorded, expected differences)
        (CollectionInfo("c", count=0, **fits), []),
        (CollectionInfo("c", count=3, **{**fits, "query_instruction": "other: "}), []),  # holds documents
        (CollectionInfo("c", count=0, **{**fits, "model": None, "query_instruction": "x"}), []),  # not ours
        (CollectionInfo("c", count=0, **{**fits, "query_instruction": "other: "}), ["query_instruction"]),
        (CollectionInfo("c", count=0, **{**fits, "model": "n", "dimension": 7}), ["model", "dimension"]),
    ]
    for recorded, expected in cases:
        store = FakeStore(recorded)
        assert replace_empty_collection(store, "c", enc, model="m") == expected
        assert store.deleted == (["c"] if expected else [])
    assert replace_empty_collection(FakeStore(cases[3][0]), "absent", enc, model="m") == []
