"""INSTRUCTOR checkpoints loaded by path: recognised from the cache path, the config, the model card,
or stated with ``instructor=``; an ambiguous folder warns once, naming the option.

The checkpoint is a tiny random T5 in exactly the hub's layout (sentence-transformers module types,
no include_prompt key, Dense weights as pytorch_model.bin, no prompts), so nothing in its module
files says it is an INSTRUCTOR checkpoint. The reference is sentence-transformers with the pooling
set to include_prompt=False, which is what INSTRUCTOR computes.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from instructor_core import INSTRUCTOR_RETRIEVAL, NO_INSTRUCTIONS, AmbiguousInstructorWarning, InstructorEncoder
from tests import tiny_models

st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is the test-only reference")

TEXTS = tiny_models.corpus_lines(24)
QUERY = "Represent the Science question for retrieving supporting documents: "
DOCUMENT = "Represent the Science document for retrieval: "
REV = "5fa6a1e8b5e0bd3de1b0ac6de4f0b7e1f4a6a5c2"


@pytest.fixture(scope="module")
def hub_layout(tmp_path_factory) -> Path:
    """The tiny checkpoint in the hub layout, built once; tests copy it where they need it."""
    return tiny_models.build_t5_instructor(tmp_path_factory.mktemp("hub_layout") / "model", layout="hub")


def place(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def reference(path: Path, include_prompt: bool) -> tuple[np.ndarray, np.ndarray]:
    model = st.SentenceTransformer(str(path), device="cpu")
    model.set_pooling_include_prompt(include_prompt)
    return model.encode(TEXTS, prompt=QUERY), model.encode(TEXTS, prompt=DOCUMENT)


def ours(encoder: InstructorEncoder) -> tuple[np.ndarray, np.ndarray]:
    return encoder.encode_queries(TEXTS, QUERY), encoder.encode_documents(TEXTS, DOCUMENT)


def load_quietly(path: Path, **options) -> InstructorEncoder:
    """Load, failing on any AmbiguousInstructorWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmbiguousInstructorWarning)
        return InstructorEncoder.from_pretrained(path, device="cpu", **options)


def assert_instructor_vectors(encoder: InstructorEncoder, path: Path) -> None:
    assert encoder.spec.is_instructor and not encoder.spec.include_prompt
    assert encoder.instructions == INSTRUCTOR_RETRIEVAL
    q, d = ours(encoder)
    ref_q, ref_d = reference(path, include_prompt=False)
    assert np.abs(q - ref_q).max() <= 1e-5
    assert np.abs(d - ref_d).max() <= 1e-5
    # and the instruction-pooled vectors (what a plain load gives) are far from them
    pooled_q, _ = reference(path, include_prompt=True)
    assert np.abs(q - pooled_q).max() > 1e-3


def test_hub_layout_has_nothing_that_says_instructor(hub_layout):
    assert not (hub_layout / "2_Dense" / "model.safetensors").exists()
    assert (hub_layout / "2_Dense" / "pytorch_model.bin").is_file()
    assert "include_prompt" not in (hub_layout / "1_Pooling" / "config.json").read_text()
    assert "InstructorEmbedding" not in (hub_layout / "modules.json").read_text()
    assert "prompts" not in (hub_layout / "config_sentence_transformers.json").read_text()


def test_huggingface_cache_path_is_recognised(hub_layout, tmp_path):
    snapshot = place(hub_layout, tmp_path / "hub" / "models--hkunlp--instructor-large" / "snapshots" / REV)
    assert_instructor_vectors(load_quietly(snapshot), snapshot)


def test_cache_path_through_a_symlinked_snapshot_is_recognised(hub_layout, tmp_path):
    # a folder copied out of the cache keeps working when it is a link into the cache
    snapshot = place(hub_layout, tmp_path / "models--hkunlp--instructor-base" / "snapshots" / REV)
    link = tmp_path / "my-model"
    link.symlink_to(snapshot, target_is_directory=True)
    assert load_quietly(link).spec.is_instructor


def test_folder_named_after_the_hub_id_is_recognised(hub_layout, tmp_path):
    folder = place(hub_layout, tmp_path / "offline-server" / "hkunlp" / "instructor-large")
    assert load_quietly(folder).spec.is_instructor
    # a look-alike name is not the hub id: it stays unmarked, and warns
    look_alike = place(hub_layout, tmp_path / "hkunlp" / "instructor-large-v9")
    with pytest.warns(AmbiguousInstructorWarning):
        assert not InstructorEncoder.from_pretrained(look_alike, device="cpu").spec.is_instructor


def test_config_name_or_path_is_recognised(tmp_path):
    folder = tiny_models.build_t5_instructor(
        tmp_path / "offline-copy", layout="hub", name_or_path="hkunlp/instructor-xl"
    )
    assert_instructor_vectors(load_quietly(folder), folder)


def test_model_card_is_recognised(hub_layout, tmp_path):
    folder = place(hub_layout, tmp_path / "copied")
    (folder / "README.md").write_text(
        "---\npipeline_tag: sentence-similarity\n---\n# hkunlp/instructor-large\n"
        "from InstructorEmbedding import INSTRUCTOR\nmodel = INSTRUCTOR('hkunlp/instructor-large')\n",
        encoding="utf-8",
    )
    assert_instructor_vectors(load_quietly(folder), folder)


def test_ambiguous_folder_warns_once_naming_the_option(hub_layout, tmp_path):
    folder = place(hub_layout, tmp_path / "unmarked")
    with pytest.warns(AmbiguousInstructorWarning, match=r"instructor=True \(CLI: --instructor\)") as caught:
        first = InstructorEncoder.from_pretrained(folder, device="cpu")
    assert len([w for w in caught if issubclass(w.category, AmbiguousInstructorWarning)]) == 1
    assert str(folder) in str(caught[0].message)
    # once per folder: a second load is silent
    second = load_quietly(folder)
    # unmarked, it loads as plain sentence-transformers does: the instruction is pooled
    assert not first.spec.is_instructor and first.spec.include_prompt and first.instructions == NO_INSTRUCTIONS
    q, d = ours(second)
    ref_q, ref_d = reference(folder, include_prompt=True)
    assert np.abs(q - ref_q).max() <= 1e-5 and np.abs(d - ref_d).max() <= 1e-5


def test_instructor_true_states_it(hub_layout, tmp_path):
    folder = place(hub_layout, tmp_path / "stated")
    assert_instructor_vectors(load_quietly(folder, instructor=True), folder)


def test_instructor_false_states_the_opposite_without_warning(hub_layout, tmp_path):
    snapshot = place(hub_layout, tmp_path / "models--hkunlp--instructor-large" / "snapshots" / REV)
    encoder = load_quietly(snapshot, instructor=False)
    assert not encoder.spec.is_instructor and encoder.spec.include_prompt
    q, _ = ours(encoder)
    assert np.abs(q - reference(snapshot, include_prompt=True)[0]).max() <= 1e-5
    unmarked = place(hub_layout, tmp_path / "unmarked")
    assert not load_quietly(unmarked, instructor=False).spec.is_instructor


def test_instructor_true_overrides_a_pooling_config_that_includes_the_prompt(tmp_path):
    # a checkpoint re-saved by a tool that wrote include_prompt: true
    folder = tiny_models.build_t5_instructor(tmp_path / "resaved", layout="st")
    config = folder / "1_Pooling" / "config.json"
    config.write_text(config.read_text().replace('"include_prompt": false', '"include_prompt": true'))
    assert load_quietly(folder).spec.include_prompt  # the folder's own word, without the option
    assert not load_quietly(folder, instructor=True).spec.include_prompt


def test_models_of_other_shapes_do_not_warn(tiny_bert_path, tiny_t5_path):
    assert not load_quietly(tiny_bert_path).spec.is_instructor  # BERT with prompts
    assert not load_quietly(tiny_t5_path).spec.include_prompt  # the pooling config says so


def test_card_naming_instructor_does_not_mark_a_bert(tmp_path, tiny_bert_path):
    folder = place(tiny_bert_path, tmp_path / "bert")
    (folder / "README.md").write_text("Compared with hkunlp/instructor-large on MTEB.\n", encoding="utf-8")
    assert not load_quietly(folder).spec.is_instructor


def test_sentence_transformers_2_cache_folder_is_used_offline(hub_layout, tmp_path):
    # cache_folder= as InstructorEmbedding / sentence-transformers < 2.3 laid it out
    place(hub_layout, tmp_path / "cache" / "hkunlp_instructor-large")
    encoder = load_quietly("hkunlp/instructor-large", cache_dir=tmp_path / "cache")
    assert encoder.spec.is_instructor and not encoder.spec.include_prompt


def test_sentence_transformers_2_cache_folder_is_recognised_by_its_path(hub_layout, tmp_path):
    # the same folder loaded by its path: no hub id to go by, its name alone says what it is
    folder = place(hub_layout, tmp_path / "cache" / "hkunlp_instructor-large")
    encoder = load_quietly(folder)
    assert encoder.spec.is_instructor and not encoder.spec.include_prompt


def test_instructor_option_type_is_checked(hub_layout):
    with pytest.raises(TypeError, match="instructor must be True, False or None"):
        InstructorEncoder.from_pretrained(hub_layout, device="cpu", instructor="yes")


def test_cli_instructor_flag(hub_layout, tmp_path):
    from instructor_core.cli import main

    folder = place(hub_layout, tmp_path / "unmarked")
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS[:6]) + "\n", encoding="utf-8")
    argv = ["embed", str(source), "--model", str(folder), "--instruction", DOCUMENT, "--device", "cpu", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmbiguousInstructorWarning)
        assert main([*argv, "-o", str(tmp_path / "stated.npy"), "--instructor"]) == 0
    _, ref_d = reference(folder, include_prompt=False)
    assert np.abs(np.load(tmp_path / "stated.npy") - ref_d[:6]).max() <= 1e-5
    with pytest.warns(AmbiguousInstructorWarning, match="--instructor"):
        assert main([*argv, "-o", str(tmp_path / "silent.npy")]) == 0
    _, pooled_d = reference(folder, include_prompt=True)
    assert np.abs(np.load(tmp_path / "silent.npy") - pooled_d[:6]).max() <= 1e-5
