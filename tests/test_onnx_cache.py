"""The ONNX export cache verifies what it serves: a planted or truncated file is rebuilt, with a warning."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from instructor_core import InstructorEncoder
from tests.tiny_models import corpus_lines

pytest.importorskip("onnxruntime", reason='the ONNX backends need the "onnx" extra')
pytest.importorskip("onnxscript", reason='the ONNX backends need the "onnx" extra')

from instructor_core.model.backends import onnxrt  # noqa: E402
from instructor_core.model.backends.onnxrt import OnnxCacheWarning  # noqa: E402

PAIRS = [
    (("", "Represent the passage: ", "Represent the question for retrieval: ")[k % 3], t)
    for k, t in enumerate(corpus_lines(16))
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_bert_path, tiny_t5_path):
    """One fresh ONNX export of each tiny model, in a module-wide cache; tests copy them."""
    cache = tmp_path_factory.mktemp("onnx_exports")
    InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=cache / "bert")
    InstructorEncoder.from_pretrained(tiny_t5_path, backend="onnx", backend_cache_dir=cache / "t5")
    return cache


def _export_folder(cache):
    (folder,) = (cache / "onnx").iterdir()
    return folder


@pytest.fixture
def bert_cache(tmp_path, exports):
    cache = tmp_path / "cache"
    shutil.copytree(exports / "bert", cache)
    return cache


def _load(path, cache):
    with pytest.warns(OnnxCacheWarning) as caught:
        encoder = InstructorEncoder.from_pretrained(path, backend="onnx", backend_cache_dir=cache)
    return encoder, [str(w.message) for w in caught]


def test_manifest_records_each_file_and_a_clean_load_warns_nothing(bert_cache, tiny_bert_path, tiny_bert_encoder):
    folder = _export_folder(bert_cache)
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["exports"]["model.onnx"]
    assert "model.onnx" in files and len(files["model.onnx"]["sha256"]) == 64
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", OnnxCacheWarning)  # a copied cache (new inodes) is re-hashed, still fine
        encoder = InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=bert_cache)
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5


def test_a_planted_export_of_another_model_is_rebuilt(bert_cache, exports, tiny_bert_path, tiny_bert_encoder):
    folder = _export_folder(bert_cache)
    shutil.copyfile(_export_folder(exports / "t5") / "model.onnx", folder / "model.onnx")
    encoder, messages = _load(tiny_bert_path, bert_cache)
    # today the planted file is served: another model's vectors
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5
    assert any(str(folder) in m and "model.onnx does not match the SHA-256" in m for m in messages)


def test_a_planted_export_with_its_own_manifest_is_rebuilt(bert_cache, exports, tiny_bert_path, tiny_bert_encoder):
    """Issue 24 #6: another model's whole export folder (model.onnx and manifest.json) copied over
    this model's: the manifest names the model it was exported from, so it is not served."""
    folder = _export_folder(bert_cache)
    for path in _export_folder(exports / "t5").iterdir():
        if path.is_file() and path.name != ".instructor.lock":
            shutil.copyfile(path, folder / path.name)
    encoder, messages = _load(tiny_bert_path, bert_cache)
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5
    assert any(str(folder) in m and "exported from another model" in m for m in messages)


def test_a_changed_export_of_the_same_size_is_rebuilt(bert_cache, tiny_bert_path, tiny_bert_encoder):
    """The size is only a shortcut: a file of the recorded size but other bytes fails on its SHA-256."""
    folder = _export_folder(bert_cache)
    path = folder / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert path.stat().st_size == len(data)
    encoder, messages = _load(tiny_bert_path, bert_cache)
    assert any("model.onnx does not match the SHA-256" in m for m in messages)
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5


def test_an_export_missing_from_the_manifest_is_rebuilt(bert_cache, exports, tiny_bert_path, tiny_bert_encoder):
    """A file the manifest does not list was not made here: it is never served unchecked."""
    folder = _export_folder(bert_cache)
    shutil.copyfile(_export_folder(exports / "t5") / "model.onnx", folder / "model.onnx")  # another model
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["exports"]["model.onnx"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    encoder, messages = _load(tiny_bert_path, bert_cache)
    assert any("model.onnx is not in manifest.json" in m for m in messages)
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5


def test_a_truncated_export_is_rebuilt(bert_cache, tiny_bert_path, tiny_bert_encoder):
    folder = _export_folder(bert_cache)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    encoder, messages = _load(tiny_bert_path, bert_cache)  # today: InvalidProtobuf, no rebuild, no hint
    assert np.abs(encoder.encode(PAIRS) - tiny_bert_encoder.encode(PAIRS)).max() <= 1e-5
    assert any("rebuilding" in m for m in messages)


def test_a_file_onnxruntime_cannot_open_is_rebuilt_and_a_second_failure_names_the_folder(
    bert_cache, tiny_bert_path, monkeypatch
):
    folder = _export_folder(bert_cache)
    builds = []

    def broken_export(model, target):
        builds.append(target)
        (target / "model.onnx").write_bytes(b"still not a model")

    (folder / "model.onnx").write_bytes(b"not a model")
    monkeypatch.setattr(onnxrt, "_export", broken_export)
    with (
        pytest.warns(OnnxCacheWarning),
        pytest.raises(RuntimeError, match="cannot be opened even after a rebuild") as info,
    ):
        InstructorEncoder.from_pretrained(tiny_bert_path, backend="onnx", backend_cache_dir=bert_cache)
    assert str(folder) in str(info.value)
    assert len(builds) == 1  # rebuilt once, not in a loop


def test_the_key_includes_transformers_and_onnxruntime_versions(tiny_bert_path, monkeypatch):
    transformer = tiny_bert_path  # a plain folder with config.json and weights
    before = onnxrt.export_key(transformer)
    for name in ("transformers", "onnxruntime"):
        real = onnxrt._version
        monkeypatch.setattr(
            onnxrt, "_version", lambda dist, name=name, real=real: "0.0" if dist == name else real(dist)
        )
        assert onnxrt.export_key(transformer) != before
        monkeypatch.setattr(onnxrt, "_version", real)
