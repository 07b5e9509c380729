"""Issue 24, the frictions a newcomer hits: each one, as it was met, and what it says now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructor_core.cli import main

D = "Represent the document for retrieval: "


def _corpus(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"text number {i}"}) + "\n" for i in range(n)))
    return path


def _ingest(corpus: Path, store: str, model: Path, *extra: str) -> int:
    return main(["ingest", str(corpus), "--store", store, "--collection", "notes", "--model", str(model),
                 "--document-instruction", D, *extra])  # fmt: skip


# ------------------------------------------------------------------------ 1. search --quiet
def test_search_accepts_quiet_and_hides_the_loading_bar(tmp_path, tiny_t5_path, capsys, monkeypatch):
    from instructor_core import cli

    store = f"qdrant:{tmp_path / 'store'}"
    assert _ingest(_corpus(tmp_path / "c.jsonl", 3), store, tiny_t5_path, "--quiet") == 0
    entered = []
    real = cli.quiet_transformers

    def spy():
        entered.append(True)
        return real()

    monkeypatch.setattr(cli, "quiet_transformers", spy)
    capsys.readouterr()
    assert main(["search", "text", "--store", store, "--collection", "notes", "--quiet"]) == 0
    assert entered == [True]
    assert "d0" in capsys.readouterr().out


# ------------------------------------------------------------------------ 3. a progress bar with a total
@pytest.mark.parametrize(("name", "content", "count"), [
    ("c.jsonl", '{"id": 1}\n\n{"id": 2}\n', 2),
    ("c.csv", "id,text\n1,a\n2,b\n3,c\n", 3),
    ("c.tsv", "id\ttext\n", 0),
    ("c.txt", "a\nb\n", None),
])  # fmt: skip
def test_count_records_for_the_progress_bar(tmp_path, name, content, count):
    from instructor_core.cli.commands.store import count_records

    (tmp_path / name).write_text(content)
    assert count_records(tmp_path / name) == count
    assert count_records(tmp_path) is None


def test_the_ingest_bar_has_a_total(tmp_path, tiny_t5_path, capsys):
    assert _ingest(_corpus(tmp_path / "c.jsonl", 7), f"qdrant:{tmp_path / 'store'}", tiny_t5_path) == 0
    assert "7/7" in capsys.readouterr().err


# ---------------------------------------------------------------- 6. a package folder instead of its model folder
def test_a_package_folder_gets_a_hint_to_its_model_folder(tmp_path, tiny_t5_path, capsys):
    import shutil

    package = tmp_path / "gt_some_model"
    shutil.copytree(tiny_t5_path, package / "model")
    (package / "__init__.py").write_text("")
    source = tmp_path / "in.txt"
    source.write_text("a text\n")
    assert main(["embed", str(source), "-o", str(tmp_path / "o.npy"), "--model", str(package)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"did you mean {package / 'model'}?" in err


# ---------------------------------------------------------------- 7. a mistyped option, a store of the other kind
def test_a_mistyped_option_is_named_with_the_nearest_one(capsys):
    with pytest.raises(SystemExit) as info:
        main(["search", "q", "--colection", "notes"])
    assert info.value.code == 2
    assert "unrecognized arguments: --colection (did you mean --collection?)" in capsys.readouterr().err


def test_an_unknown_option_with_everything_else_given_is_named_too(capsys):
    with pytest.raises(SystemExit):
        main(["collections", "list", "--jsn"])
    assert "unrecognized arguments: --jsn (did you mean --json?)" in capsys.readouterr().err


def test_chroma_url_on_a_qdrant_folder_says_what_the_folder_is(tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "store"
    assert _ingest(_corpus(tmp_path / "c.jsonl", 2), f"qdrant:{folder}", tiny_t5_path, "--quiet") == 0
    capsys.readouterr()
    assert main(["collections", "list", "--store", f"chroma:{folder}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a Qdrant Edge store" in err and f"--store qdrant:{folder}" in err
    assert main(["search", "q", "--store", f"chroma:{folder}", "--collection", "notes"]) == 2
    assert "is a Qdrant Edge store" in capsys.readouterr().err
    assert not (folder / "chroma.sqlite3").exists()


# ------------------------------------------------------------------------ 3. Ray's INFO logs
@pytest.mark.parametrize("address", [None, "ray://127.0.0.1:10001"])
def test_ray_is_started_with_warnings_only(address, monkeypatch):
    import logging
    import sys
    import types

    import instructor_ray.cli as ray_cli
    from instructor_ray.cli import _start_ray

    monkeypatch.setattr(ray_cli, "_check_reachable", lambda address: None)  # no cluster here: ray.init is faked
    calls = []
    fake = types.ModuleType("ray")
    fake.init = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    fake.data = types.ModuleType("ray.data")  # type: ignore[attr-defined]
    fake.__path__ = []  # type: ignore[attr-defined]  # a package: `import ray.data` finds the fake below
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)  # type: ignore[attr-defined]
    monkeypatch.setattr(logging.getLogger("ray"), "level", logging.getLogger("ray").level)  # restored after
    _start_ray(address, 1, 1.0)
    assert calls[0]["logging_level"] == logging.WARNING and calls[0]["log_to_driver"] is False
    assert logging.getLogger("ray").level == logging.WARNING
