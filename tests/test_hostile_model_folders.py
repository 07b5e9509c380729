"""Damaged and hostile model folders: one line naming the file and the field (exit 2 on the CLI,
``ModelFolderError`` or ``ModelLoadError`` from Python), never a traceback, a raw control byte or a
line past 1,000 characters."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from instructor_core import InstructorEncoder, InstructorError, ModelFolderError
from instructor_core.cli import main
from instructor_core.errors import ModelLoadError


def one_error_line(capsys, command: str) -> str:
    """The single line the CLI printed on stderr for an expected failure (exit 2 checked by the caller)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"instructor {command}: error: ")
    return lines[0]


def damaged(tmp_path: Path, source: Path, damage: Callable[[Path], None]) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    damage(folder)
    return folder


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def remote_code_config(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="acme_bert", auto_map={"AutoConfig": "acme.AcmeConfig", "AutoModel": "acme.AcmeModel"})
    write_json(folder / "config.json", config)


def embed_argv(folder: Path, tmp_path: Path) -> list[str]:
    texts = tmp_path / "in.txt"
    texts.write_text("hello\n", encoding="utf-8")
    return ["embed", str(texts), "--model", str(folder), "-o", str(tmp_path / "out.jsonl"), "--quiet"]


DAMAGE = {
    "modules.json [1, 2]": (lambda d: write_json(d / "modules.json", [1, 2]), "module 0 is 1, expected an object"),
    "max_seq_length abc": (
        lambda d: write_json(d / "sentence_bert_config.json", {"max_seq_length": "abc"}),
        "sentence_bert_config.json: max_seq_length should be a positive integer, found 'abc'",
    ),
    "max_seq_length -5": (
        lambda d: write_json(d / "sentence_bert_config.json", {"max_seq_length": -5}),
        "sentence_bert_config.json: max_seq_length should be a positive integer, found -5",
    ),
    "default_prompt_name list": (
        lambda d: write_json(
            d / "config_sentence_transformers.json", {"prompts": {"query": "q: "}, "default_prompt_name": ["query"]}
        ),
        "config_sentence_transformers.json: default_prompt_name should be a prompt's name (a string), found ['query']",
    ),
    "model_type needs remote code": (
        remote_code_config,
        "model_type 'acme_bert' needs the folder's own code (its config.json auto_map), which instructor does not run",
    ),
    "modules.json not JSON": (
        lambda d: (d / "modules.json").write_text("[{", encoding="utf-8"),
        "modules.json is not valid JSON",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_model_folder_is_a_model_folder_error(case, tmp_path, tiny_bert_path):
    damage, says = DAMAGE[case]
    folder = damaged(tmp_path, tiny_bert_path, damage)
    with pytest.raises(ModelFolderError) as caught:
        InstructorEncoder.from_pretrained(folder, device="cpu")
    assert says in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_model_folder_is_one_line_on_the_cli(case, tmp_path, tiny_bert_path, capsys):
    damage, says = DAMAGE[case]
    folder = damaged(tmp_path, tiny_bert_path, damage)
    assert main(embed_argv(folder, tmp_path)) == 2
    assert says in one_error_line(capsys, "embed")


def test_truncated_weights_are_an_instructor_error_from_python_and_the_same_line_on_the_cli(
    tmp_path, tiny_bert_path, capsys
):
    folder = damaged(tmp_path, tiny_bert_path, lambda d: (d / "model.safetensors").write_bytes(b"\0" * 64))
    with pytest.raises(ModelLoadError, match=f"cannot load the model at {folder}: SafetensorError: "):
        InstructorEncoder.from_pretrained(folder, device="cpu")
    assert issubclass(ModelLoadError, InstructorError)
    assert main(embed_argv(folder, tmp_path)) == 2
    assert f"cannot load the model at {folder}: SafetensorError: " in one_error_line(capsys, "embed")


def test_instructor_error_is_exported_from_the_package():
    import instructor_core

    assert "InstructorError" in instructor_core.__all__
    assert instructor_core.InstructorError is InstructorError


def assert_safe_line(line: str) -> None:
    assert len(line) <= 1000, len(line)
    assert not [c for c in line if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F], repr(line[:200])


def test_a_module_path_with_terminal_controls_is_escaped_in_the_error(tmp_path, tiny_bert_path, capsys):
    hostile = "\u001b]0;OWNED\u0007\u001b[2J"

    def plant(folder: Path) -> None:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        modules[0]["path"] = hostile
        write_json(folder / "modules.json", modules)

    folder = damaged(tmp_path, tiny_bert_path, plant)
    with pytest.raises(ModelFolderError, match="does not exist"):
        InstructorEncoder.from_pretrained(folder, device="cpu")
    assert main(embed_argv(folder, tmp_path)) == 2
    line = one_error_line(capsys, "embed")
    assert_safe_line(line)
    assert r"\x1b]0;OWNED\x07\x1b[2J" in line


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"prompts": {"query": "x" * 1_000_000, "bad": 5}}, "prompt 'bad' should be a string, found int 5"),
        (
            {"prompts": {"x" * 1_000_000: "p"}, "default_prompt_name": "query"},
            "default_prompt_name 'query' is not among its prompts ('xxxx",
        ),
        (
            {"prompts": {"query": "q"}, "default_prompt_name": "\x1b[2J" + "x" * 1_000_000},
            "default_prompt_name '\\x1b[2Jxxx",
        ),
    ],
    ids=["long prompt beside a bad one", "long prompt name", "long default name"],
)
def test_a_million_character_prompt_is_cut_in_the_error(config, says, tmp_path, tiny_bert_path, capsys):
    folder = damaged(tmp_path, tiny_bert_path, lambda d: write_json(d / "config_sentence_transformers.json", config))
    with pytest.raises(ModelFolderError) as caught:
        InstructorEncoder.from_pretrained(folder, device="cpu")
    assert len(str(caught.value)) < 1000
    assert main(embed_argv(folder, tmp_path)) == 2
    line = one_error_line(capsys, "embed")
    assert_safe_line(line)
    assert says in line
    assert "x" * 100 not in line
    if "xxxx" in says:
        assert "(1000000 characters)" in line or "(1000004 characters)" in line  # says how long it was


def test_every_cli_error_line_is_escaped_and_cut(tmp_path, tiny_bert_path, capsys, monkeypatch):
    """The backstop where the CLI prints: whatever a message holds, the line is safe to print."""
    from instructor_core.errors import InputError

    def hostile(*args, **kwargs):
        raise InputError("bad value '\x1b]0;OWNED\x07" + "y" * 1_000_000 + "'")

    monkeypatch.setattr(InstructorEncoder, "from_pretrained", hostile)
    assert main(embed_argv(tiny_bert_path, tmp_path)) == 2
    line = one_error_line(capsys, "embed")
    assert_safe_line(line)
    assert line.startswith(r"instructor embed: error: bad value '\x1b]0;OWNED\x07yyy")
    assert line.endswith("... (1000022 characters)")


def test_an_argument_echoed_by_argparse_is_escaped_and_cut(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["embed", "x.txt", "-o", str(tmp_path / "y.npy"), "--backend", "\x1b[2J" + "a" * 3000])
    assert stopped.value.code == 2
    line = one_error_line(capsys, "embed")
    assert_safe_line(line)
    assert r"invalid choice: '\x1b[2Jaaa" in line
