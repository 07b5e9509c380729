"""instructor_core.model.fingerprint: a model is its weights and configuration, not its path."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from instructor_core import InstructorEncoder
from instructor_core.model import fingerprint as fp
from instructor_core.model.fingerprint import fingerprint_files, model_fingerprint


@pytest.fixture
def model(tmp_path, tiny_t5_path):
    """A private copy of the tiny T5 INSTRUCTOR folder (tests change it)."""
    return shutil.copytree(tiny_t5_path, tmp_path / "model")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("INSTRUCTOR_CACHE", str(folder))
    return folder


def _count_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = fp._hash_file

    def counting(path):
        reads.append(path.name)
        return real(path)

    monkeypatch.setattr(fp, "_hash_file", counting)
    return reads


def test_files_that_count(model):
    (model / "README.md").write_text("a model card", encoding="utf-8")
    (model / ".git").mkdir()
    (model / ".git" / "config.json").write_text("{}", encoding="utf-8")
    names = fingerprint_files(model)
    assert {"model.safetensors", "config.json", "modules.json", "sentence_bert_config.json"} <= set(names)
    assert {"1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors"} <= set(names)
    assert "tokenizer.json" in names
    assert "README.md" not in names and ".git/config.json" not in names
    assert "config_sentence_transformers.json" not in names  # instructions: the store records them itself


def test_same_folder_same_fingerprint_and_the_second_call_reads_nothing(model, cache, monkeypatch):
    reads = _count_reads(monkeypatch)
    first = model_fingerprint(model)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 24
    assert sorted(reads) == sorted(n.rsplit("/", 1)[-1] for n in fingerprint_files(model))
    reads.clear()
    assert model_fingerprint(model) == first
    assert reads == []  # served from the cache: no file re-read
    assert (cache / "fingerprints.json").is_file()


def test_weights_replaced_in_place_change_the_fingerprint(model, cache, monkeypatch):
    before = model_fingerprint(model)
    weights = model / "2_Dense" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["linear.weight"] = tensors["linear.weight"] * 1.01  # same shape, same size: another model
    size = weights.stat().st_size
    save_file(tensors, str(weights))
    assert weights.stat().st_size == size
    reads = _count_reads(monkeypatch)
    after = model_fingerprint(model)
    assert after != before
    assert reads == ["model.safetensors"]  # only the changed file is hashed again


def test_a_replacement_with_the_old_size_and_mtime_is_still_seen(model, cache):
    """cp -p / rsync -t keep the mtime: the cache key's ctime and inode still tell the change."""
    weights = model / "2_Dense" / "model.safetensors"
    stat = weights.stat()
    before = model_fingerprint(model)
    tensors = load_file(str(weights))
    save_file({"linear.weight": -tensors["linear.weight"]}, str(weights))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert model_fingerprint(model) != before


def test_config_change_changes_the_fingerprint(model, cache):
    before = model_fingerprint(model)
    config = model / "1_Pooling" / "config.json"
    data = json.loads(config.read_text())
    data["include_prompt"] = True  # pools the instruction tokens: other vectors
    config.write_text(json.dumps(data), encoding="utf-8")
    assert model_fingerprint(model) != before


def test_a_copy_elsewhere_has_the_same_fingerprint(model, tmp_path, cache):
    copy = shutil.copytree(model, tmp_path / "elsewhere" / "renamed")
    (copy / "README.md").write_text("another card", encoding="utf-8")
    assert model_fingerprint(copy) == model_fingerprint(model)


def test_a_corrupt_cache_is_ignored_and_rewritten(model, cache, monkeypatch):
    cache.mkdir(parents=True)
    (cache / "fingerprints.json").write_text('{"version": 1, "files": {', encoding="utf-8")
    expected = model_fingerprint(model, cache_dir=cache / "other")
    assert model_fingerprint(model) == expected
    data = json.loads((cache / "fingerprints.json").read_text())
    assert len(data["files"]) == len(fingerprint_files(model))
    reads = _count_reads(monkeypatch)
    assert model_fingerprint(model) == expected and reads == []


def test_a_folder_without_weights_is_refused(tmp_path, cache):
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no weight file"):
        model_fingerprint(tmp_path)


def test_encoder_fingerprint_is_its_folders(model, cache, monkeypatch):
    from instructor_core.model.fingerprint import loaded_fingerprint

    encoder = InstructorEncoder.from_pretrained(model, device="cpu")
    expected = loaded_fingerprint(model_fingerprint(model), include_prompt=encoder.spec.include_prompt)
    assert encoder.fingerprint == expected
    reads = _count_reads(monkeypatch)
    assert encoder.fingerprint == expected and reads == []


def test_fingerprint_tells_apart_two_readings_of_one_folder_and_follows_saves(tiny_bert_path, tmp_path):
    plain = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")
    instructor = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu", instructor=True)
    assert plain.spec.include_prompt != instructor.spec.include_prompt
    assert plain.fingerprint != instructor.fingerprint  # same files, other vectors
    with torch.no_grad():
        next(instructor.transformer.parameters()).add_(0.5)  # weights change in memory
    saved = instructor.save_pretrained(tmp_path / "changed")
    assert instructor.fingerprint == InstructorEncoder.from_pretrained(saved, device="cpu").fingerprint
    assert instructor.fingerprint != plain.fingerprint


def test_a_sentencepiece_model_counts(model, cache):
    """A T5 tokenizer's ``spiece.model`` decides the token ids, so it decides the vectors."""
    (model / "spiece.model").write_bytes(b"sentencepiece model, version 1")
    assert "spiece.model" in fingerprint_files(model)
    before = model_fingerprint(model)
    (model / "spiece.model").write_bytes(b"sentencepiece model, version 2")
    assert model_fingerprint(model) != before


def test_a_description_of_the_training_data_does_not_count(model, cache):
    before = model_fingerprint(model)
    (model / "data_config.json").write_text('[{"name": "msmarco", "lines": 100}]', encoding="utf-8")
    assert "data_config.json" not in fingerprint_files(model)
    assert model_fingerprint(model) == before
