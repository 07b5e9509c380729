"""Loading layouts, defaults, bad input and the save round trip."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from instructor_core import INSTRUCTOR_RETRIEVAL, Instructions, InstructorEncoder, ModelFolderError, template
from tests import tiny_models


def test_instructor_checkpoint_gets_paper_defaults_and_prompt_exclusion(tiny_instructor_path):
    enc = InstructorEncoder.from_pretrained(tiny_instructor_path, device="cpu")
    assert enc.spec.is_instructor and not enc.spec.include_prompt
    assert enc.instructions == INSTRUCTOR_RETRIEVAL
    assert enc.instructions.query == "Represent the question for retrieving supporting documents: "
    assert enc.dimension == 24
    # the pickle Dense weights loaded (weights_only) and equal the stored ones
    stored = torch.load(tiny_instructor_path / "2_Dense" / "pytorch_model.bin", weights_only=True)
    assert torch.equal(enc.dense[0].linear.weight.detach(), stored["linear.weight"])


def test_explicit_instructions_override_model_defaults(tiny_instructor_path):
    mine = Instructions(query="Represent the claim: ", document="Represent the abstract: ")
    enc = InstructorEncoder.from_pretrained(tiny_instructor_path, instructions=mine, device="cpu")
    assert enc.instructions == mine
    texts = ["cell gene protein"]
    assert np.allclose(enc.encode_queries(texts), enc.encode([("Represent the claim: ", texts[0])]), atol=1e-6)


def test_folder_prompts_become_defaults(tiny_bert_encoder):
    assert tiny_bert_encoder.instructions == Instructions(
        query="Represent the question for retrieval: ", document="Represent the passage: "
    )


def test_plain_hugging_face_folder_loads_with_mean_pooling(tmp_path, minilm_path):
    folder = tiny_models.build_plain_bert(tmp_path / "plain", minilm_path)
    enc = InstructorEncoder.from_pretrained(folder, device="cpu")
    assert enc.spec.pooling == "mean" and enc.spec.include_prompt and not enc.spec.dense
    assert enc.instructions == Instructions()
    vectors = enc.encode_documents(["a b c", "water fire"])
    assert vectors.shape == (2, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = enc.encode_documents(["a b c"], normalize=False)
    assert abs(float(np.linalg.norm(raw)) - 1.0) > 1e-3  # no Normalize module: normalize=False is raw


def test_unknown_layout_says_what_was_found(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelFolderError, match=r"neither modules.json.*notes.txt.*weights.bin"):
        InstructorEncoder.from_pretrained(tmp_path)


def test_unsupported_module_type_is_named(tmp_path, tiny_t5_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_t5_path, folder)
    modules = json.loads((folder / "modules.json").read_text())
    # LayerNorm is supported since sentence-transformers 6 layouts use it; WordWeights is not
    modules.append({"idx": 4, "name": "4", "path": "4_X", "type": "sentence_transformers.models.WordWeights"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFolderError, match="WordWeights"):
        InstructorEncoder.from_pretrained(folder)


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(ModelFolderError, match="not a local folder"):
        InstructorEncoder.from_pretrained(str(tmp_path / "nope" / "deeper"))


def test_hub_id_without_network_fails_clearly():
    with pytest.raises(ModelFolderError, match="could not fetch 'hkunlp/instructor-large'"):
        InstructorEncoder.from_pretrained("hkunlp/instructor-large")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda e: e.encode_documents("a bare string"), "single str"),
        (lambda e: e.encode_documents(None), "list of strings"),
        (lambda e: e.encode_documents(["ok", None]), r"texts\[1\] must be a str, got NoneType"),
        (lambda e: e.encode_queries(["ok", "fine", 3]), r"texts\[2\] must be a str, got int"),
        (lambda e: e.encode_queries(["ok"], instruction=5), "instruction must be a str"),
        (
            lambda e: e.encode([("a", "b"), ("only one",)]),
            r"pairs\[1\] must be an \(instruction, text\) pair",
        ),
        (lambda e: e.encode([("a", "b"), (None, "x")]), r"pairs\[1\]\[0\] \(the instruction\)"),
        (lambda e: e.encode([("a", b"bytes")]), r"pairs\[0\]\[1\] \(the text\)"),
    ],
)
def test_bad_input_names_the_item(tiny_t5_encoder, call, match):
    with pytest.raises(TypeError, match=match):
        call(tiny_t5_encoder)


def test_bad_batch_size_and_instructions_type(tiny_t5_encoder):
    with pytest.raises(ValueError, match="batch_size"):
        tiny_t5_encoder.encode_documents(["a"], batch_size=0)
    with pytest.raises(TypeError, match="Instructions.query must be a str"):
        Instructions(query=None)  # type: ignore[arg-type]


def test_empty_input_gives_empty_matrix(tiny_t5_encoder):
    out = tiny_t5_encoder.encode_documents([])
    assert out.shape == (0, tiny_t5_encoder.dimension) and out.dtype == np.float32
    assert tiny_t5_encoder.encode([]).shape == (0, 24)


def test_instruction_that_leaves_no_room_is_refused(tiny_t5_path):
    enc = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu", max_length=8)
    long_instruction = "Represent the science document for retrieval of supporting claims: "
    with pytest.raises(ValueError, match="no room is left for the text"):
        enc.encode_documents(["text"], long_instruction)
    assert enc.encode_documents(["text"], "").shape == (1, 24)


def test_save_and_reload_round_trip(tmp_path, tiny_instructor_path):
    mine = Instructions(query="Represent the claim: ", document="Represent the abstract: ")
    enc = InstructorEncoder.from_pretrained(tiny_instructor_path, instructions=mine, device="cpu")
    texts = tiny_models.corpus_lines(20)
    before_q, before_d = enc.encode_queries(texts), enc.encode_documents(texts)
    out = enc.save_pretrained(tmp_path / "saved")
    again = InstructorEncoder.from_pretrained(out, device="cpu")
    assert again.instructions == mine
    assert again.max_length == enc.max_length and again.spec.include_prompt is False
    assert np.array_equal(again.encode_queries(texts), before_q)
    assert np.array_equal(again.encode_documents(texts), before_d)


def test_saved_folder_loads_in_sentence_transformers(tmp_path, tiny_instructor_path):
    st = pytest.importorskip("sentence_transformers")
    mine = Instructions(query="Represent the claim: ", document="Represent the abstract: ")
    enc = InstructorEncoder.from_pretrained(tiny_instructor_path, instructions=mine, device="cpu")
    out = enc.save_pretrained(tmp_path / "saved")
    model = st.SentenceTransformer(str(out), device="cpu")
    texts = tiny_models.corpus_lines(30)
    assert np.abs(model.encode(texts, prompt_name="query") - enc.encode_queries(texts)).max() <= 1e-5
    assert np.abs(model.encode(texts, prompt_name="document") - enc.encode_documents(texts)).max() <= 1e-5


def test_template_builds_paper_style_instructions():
    assert template("claim", "retrieving supporting abstracts", domain="scientific") == (
        "Represent the scientific claim for retrieving supporting abstracts: "
    )
    with pytest.raises(ValueError):
        template("", "retrieval")


def test_threads_sharing_one_encoder_get_the_same_vectors(tiny_t5_encoder):
    from concurrent.futures import ThreadPoolExecutor

    texts = tiny_models.corpus_lines(40)
    expected = tiny_t5_encoder.encode_documents(texts, "Represent the document: ")
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(
                lambda k: tiny_t5_encoder.encode_documents(texts, "Represent the document: ", batch_size=k),
                range(1, 13),
            )
        )
    for got in results:
        assert np.abs(got - expected).max() <= 1e-5


def test_deepcopy_gives_an_independent_working_encoder(tiny_t5_encoder):
    import copy

    twin = copy.deepcopy(tiny_t5_encoder)
    texts = ["cell gene protein", "river mountain"]
    assert np.array_equal(twin.encode_documents(texts), tiny_t5_encoder.encode_documents(texts))
    assert twin._encode_lock is not tiny_t5_encoder._encode_lock


def test_a_submodule_left_in_train_mode_still_encodes_in_eval_mode(tiny_bert_path):
    """encode skips the eval/train walk when nothing is in train mode; a part a caller put in train
    mode (dropout on) must still be switched, so the vectors do not change."""
    encoder = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")
    dropouts = [m for m in encoder.transformer.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts
    for dropout in dropouts:  # the tiny model has none: switch it on, so train mode would show
        dropout.p = 0.5
    texts = [f"text number {i} about proteins and cells" for i in range(8)]
    expected = encoder.encode_documents(texts)
    encoder.transformer.train()
    assert np.array_equal(encoder.encode_documents(texts), expected)
    assert not any(module.training for module in encoder.modules())  # as encode always left it
