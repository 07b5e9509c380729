"""A planted or damaged ONNX export cache: a link in its ``onnx/KEY`` path is refused before anything is
written through it (every file it points at hashed before and after); a damaged manifest is rebuilt."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from instructor_core import InstructorEncoder
from instructor_core.cli import main
from instructor_core.safe_paths import UnsafePathError

pytest.importorskip("onnxruntime", reason='the ONNX backends need the "onnx" extra')
pytest.importorskip("onnxscript", reason='the ONNX backends need the "onnx" extra')

from instructor_core.model.backends.onnxrt import OnnxCacheWarning, export_key  # noqa: E402


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (links not followed), by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def one_error_line(capsys, command: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"instructor {command}: error: ")
    return lines[0]


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder outside the cache that looks like an export folder someone else owns."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "0", "exports": {}}', encoding="utf-8")
    (folder / "model.onnx").write_bytes(b"not yours to replace")
    (folder / "notes.txt").write_text("precious", encoding="utf-8")
    return folder


@pytest.mark.parametrize("linked", ["KEY", "onnx"])
def test_a_link_in_the_export_path_is_refused_and_nothing_written_through_it(
    linked, tmp_path, elsewhere, tiny_bert_path
):
    cache = tmp_path / "cache"
    key = export_key(tiny_bert_path)
    if linked == "KEY":
        (cache / "onnx").mkdir(parents=True)
        (cache / "onnx" / key).symlink_to(elsewhere, target_is_directory=True)
        target = elsewhere
    else:
        cache.mkdir()
        (elsewhere / key).mkdir()
        (cache / "onnx").symlink_to(elsewhere, target_is_directory=True)
        target = elsewhere
    before = hashes(target)
    with pytest.raises(UnsafePathError, match="is a symbolic link") as caught:
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache)
    assert str(elsewhere) in str(caught.value)  # names where the link goes
    assert hashes(target) == before
    assert sorted(p.name for p in target.rglob("*")) == sorted(
        [*(Path(p).name for p in before), *([key] if linked == "onnx" else [])]
    )  # no lock file, no build folder, nothing new


def test_a_linked_export_folder_is_one_line_on_the_cli(tmp_path, elsewhere, tiny_bert_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "onnx").mkdir(parents=True)
    (cache / "onnx" / export_key(tiny_bert_path)).symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setenv("INSTRUCTOR_CACHE", str(cache))
    texts = tmp_path / "in.txt"
    texts.write_text("hello\n", encoding="utf-8")
    before = hashes(elsewhere)
    argv = ["embed", str(texts), "--model", str(tiny_bert_path), "--backend", "onnx", "-o", str(tmp_path / "o.npy")]
    assert main([*argv, "--quiet"]) == 2
    line = one_error_line(capsys, "embed")
    assert "is a symbolic link" in line and str(elsewhere) in line
    assert hashes(elsewhere) == before


def test_a_damaged_manifest_entry_is_rebuilt_with_a_warning(tmp_path, tiny_bert_path, tiny_bert_encoder):
    cache = tmp_path / "cache"
    InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache)
    (folder,) = (cache / "onnx").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["exports"] = {"model.onnx": {"model.onnx": 5}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.warns(OnnxCacheWarning, match="manifest.json is damaged"):
        encoder = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache)
    texts = ["a short text", "another one"]
    np.testing.assert_allclose(encoder.encode(texts), tiny_bert_encoder.encode(texts), atol=1e-4)
    rebuilt = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(rebuilt["exports"]["model.onnx"]["model.onnx"], dict)


@pytest.mark.parametrize("entry", ["../../victim.onnx", "/etc/hostname"])
def test_a_manifest_naming_a_file_outside_its_folder_is_rebuilt(entry, tmp_path, tiny_bert_path):
    cache = tmp_path / "cache"
    InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache)
    (folder,) = (cache / "onnx").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["exports"]["model.onnx"][entry] = {"sha256": "0" * 64, "size": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.warns(OnnxCacheWarning, match="manifest.json is damaged"):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache)
    assert entry not in json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["exports"]["model.onnx"]
    shutil.rmtree(cache)
