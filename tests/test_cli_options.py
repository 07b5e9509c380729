"""The shared CLI options (instructor_core.cli.commands.options): one spelling, one check, one loader."""

from __future__ import annotations

import argparse

import pytest

from instructor_core.cli import build_parser, main
from instructor_core.cli.commands.options import (
    add_model_options,
    add_write_batch_size_option,
    load_encoder,
    positive_int,
)

# Every subcommand that loads a model, with the arguments that make it parse.
MODEL_COMMANDS = {
    ("embed",): ["in.txt", "-o", "out.npy"],
    ("eval", "retrieval"): ["--data", "beir"],
    ("eval", "sts"): ["--data", "sts.csv"],
    ("eval", "classification"): ["--train", "a.csv", "--test", "b.csv"],
    ("mine-negatives",): ["--rows", "rows.jsonl", "--output", "o.jsonl"],
    ("train",): ["--data", "rows.jsonl", "--output", "out"],
}
INFERENCE_COMMANDS = [c for c in MODEL_COMMANDS if c != ("train",)]


@pytest.mark.parametrize("text, expected", [("1", 1), ("32", 32), (" 7 ", 7)])
def test_positive_int_accepts_counts(text, expected):
    assert positive_int(text) == expected


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "many", ""])
def test_positive_int_refuses_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
        positive_int(text)


@pytest.mark.parametrize("command", list(MODEL_COMMANDS), ids=" ".join)
def test_every_model_command_parses_the_shared_options(command):
    args = build_parser().parse_args(
        [*command, *MODEL_COMMANDS[command], "--model", "M", "--device", "cpu", "--max-length", "64"]
        + ([] if command == ("train",) else ["--backend", "onnx-int8", "--dtype", "float32"])
        + ["--batch-size", "8"]
    )
    assert (args.model, args.device, args.max_length, args.batch_size) == ("M", "cpu", 64, 8)
    if command != ("train",):
        assert (args.backend, args.dtype) == ("onnx-int8", "float32")


@pytest.mark.parametrize("command", INFERENCE_COMMANDS, ids=" ".join)
def test_backend_and_dtype_defaults(command):
    args = build_parser().parse_args([*command, *MODEL_COMMANDS[command], "--model", "M"])
    assert (args.backend, args.dtype, args.batch_size) == ("torch", None, 32)


def test_train_has_no_backend_option(capsys):
    # Training always runs the torch model; an ONNX runtime would serve a stale export.
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", *MODEL_COMMANDS[("train",)], "--model", "M", "--backend", "onnx"])
    assert exit_info.value.code == 2
    assert "--backend" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(MODEL_COMMANDS), ids=" ".join)
@pytest.mark.parametrize("option", ["--batch-size", "--max-length"])
@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_counts_must_be_positive_everywhere(command, option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, *MODEL_COMMANDS[command], "--model", "M", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "expected a positive integer" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "r.jsonl", "--output", "o", "--model", "M", "--epochs", "0"],
        ["train", "--data", "r.jsonl", "--output", "o", "--model", "M", "--train-batch-size", "0"],
        ["train", "--data", "r.jsonl", "--output", "o", "--model", "M", "--chunk-size", "0"],
        ["mine-negatives", "--rows", "r.jsonl", "--output", "o", "--model", "M", "--num", "0"],
        ["eval", "classification", "--train", "a", "--test", "b", "--model", "M", "--max-per-label", "0"],
    ],
    ids=lambda argv: argv[-2],
)
def test_other_counts_use_positive_int(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert "expected a positive integer, got 0" in capsys.readouterr().err


def test_load_encoder_passes_every_option(monkeypatch):
    from instructor_core import Instructions, InstructorEncoder, LoadOptions

    seen = {}

    def fake_from_pretrained(name, instructions=None, *, options):
        seen.update(name=name, instructions=instructions, options=options)
        return "encoder"

    monkeypatch.setattr(InstructorEncoder, "from_pretrained", fake_from_pretrained)
    parser = argparse.ArgumentParser()
    add_model_options(parser, required_model=True)
    args = parser.parse_args(["--model", "M", "--device", "cpu", "--max-length", "9", "--backend", "onnx"])
    instructions = Instructions(query="q: ", document="d: ")
    assert load_encoder(args, instructions) == "encoder"
    assert seen == {
        "name": "M",
        "instructions": instructions,
        "options": LoadOptions(device="cpu", max_length=9, dtype=None, backend="onnx", instructor=None),
    }
    assert load_encoder(parser.parse_args(["--model", "M", "--instructor"])) == "encoder"
    assert seen["options"].instructor is True
    assert load_encoder(parser.parse_args(["--model", "M", "--no-instructor"])) == "encoder"
    assert seen["options"].instructor is False


@pytest.mark.parametrize("command", list(MODEL_COMMANDS), ids=" ".join)
def test_every_model_command_takes_instructor_or_not(command):
    def parse(*flag):
        return build_parser().parse_args([*command, *MODEL_COMMANDS[command], "--model", "M", *flag]).instructor

    assert (parse(), parse("--instructor"), parse("--no-instructor")) == (None, True, False)


def test_load_encoder_without_model_names_the_option():
    parser = argparse.ArgumentParser()
    add_model_options(parser, required_model=False)
    with pytest.raises(ValueError, match="--model"):
        load_encoder(parser.parse_args([]))


def test_embed_cli_loads_with_backend_and_dtype(tmp_path, tiny_t5_path, tiny_t5_encoder, monkeypatch):
    """End to end: `embed --dtype bfloat16` reaches from_pretrained (the vectors are bfloat16's)."""
    import numpy as np

    from instructor_core import InstructorEncoder

    seen = []
    original = InstructorEncoder.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(InstructorEncoder, "from_pretrained", classmethod(spy))
    source = tmp_path / "in.txt"
    source.write_text("a cell\nthe river\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    argv = ["embed", str(source), "-o", str(out), "--model", str(tiny_t5_path), "--dtype", "bfloat16", "--quiet"]
    assert main(argv) == 0
    assert seen[0]["options"].dtype == "bfloat16" and seen[0]["options"].backend == "torch"
    vectors = np.load(out)
    exact = tiny_t5_encoder.encode_documents(["a cell", "the river"])
    assert vectors.shape == exact.shape
    assert not np.array_equal(vectors, exact)  # bfloat16 weights moved them
    assert np.allclose(vectors, exact, atol=5e-2)


def test_write_batch_size_and_its_old_spelling(capsys):
    parser = argparse.ArgumentParser(prog="instructor ingest")
    add_write_batch_size_option(parser)
    assert parser.parse_args([]).write_batch_size is None
    assert parser.parse_args(["--write-batch-size", "64"]).write_batch_size == 64
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["--batch-size", "16"]).write_batch_size == 16
    assert "--batch-size is now spelled --write-batch-size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "0"])
