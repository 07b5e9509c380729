"""``instructor_core.safe_paths``: the link a planted folder holds is never followed, even when it
appears between the check and the open; an atomic write's temporary file lies beside its target
(so the rename stays on one filesystem); and confinement, for any path made of plain names, ``..``,
``.`` and links, refuses exactly what leaves the root or passes through a link (Hypothesis), as the
Edge store's collection names do."""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructor_core import safe_paths
from instructor_core.errors import InputError
from instructor_core.safe_paths import UnsafePathError, atomic_output, confined, open_regular_file

PROPERTY = settings(max_examples=80, deadline=None, database=None)


# ------------------------------------------------------------------------ open_regular_file: O_NOFOLLOW
def test_a_link_planted_after_the_check_is_not_followed(tmp_path, monkeypatch):
    """The link appears between ``lstat`` (which saw nothing) and ``open``: the open itself must
    refuse it (``O_NOFOLLOW``), leaving the victim as it was."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    planted = tmp_path / "store" / ".instructor.lock"
    planted.parent.mkdir()
    planted.symlink_to(victim)
    real_lstat = os.lstat

    def lstat_before_the_swap(path, *args, **kwargs):
        if Path(path) == planted:
            raise FileNotFoundError(path)  # what lstat saw a moment before the link was planted
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(safe_paths.os, "lstat", lstat_before_the_swap)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        fd = open_regular_file(planted, what="lock file")
        os.close(fd)
    monkeypatch.undo()
    assert victim.read_text(encoding="utf-8") == "keep me" and planted.is_symlink()


# ------------------------------------------------------------------------ atomic_output: beside the target
def test_the_temporary_file_lies_in_the_targets_folder_and_nowhere_else(tmp_path, monkeypatch):
    elsewhere = tmp_path / "system-temp"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))  # where a temporary file goes by default
    target = tmp_path / "out" / "vectors.jsonl"
    target.parent.mkdir()
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(safe_paths.os, "replace", lambda a, b: renamed.append((str(a), str(b))) or real_replace(a, b))
    with atomic_output(target, "w") as handle:
        handle.write("partial")
        during = sorted(p.name for p in target.parent.iterdir())
        assert len(during) == 1 and during[0].startswith(".vectors.jsonl.") and during[0].endswith(".tmp")
        assert list(elsewhere.iterdir()) == []
    assert target.read_text(encoding="utf-8") == "partial"
    assert [Path(a).parent for a, _ in renamed] == [target.parent] and [b for _, b in renamed] == [str(target)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["vectors.jsonl"]


# ------------------------------------------------------------------------ confined: a property
_PARTS = st.lists(st.sampled_from(["a", "b", "new", "..", ".", "inlink", "outlink"]), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """``base/root/{a/, b/, inlink -> a, outlink -> ../outside}`` and ``base/outside/``."""
    base = tmp_path_factory.mktemp("confined")
    root = base / "root"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (base / "outside").mkdir()
    (root / "inlink").symlink_to(root / "a")
    (root / "outlink").symlink_to(base / "outside")
    return root


def _expected(root: Path, parts: list[str]) -> Path | None:
    """The rule, written out: the path is normalised by name (``..`` removes the name before it); it
    is refused if it leaves the root or if any name below the root is a link; else it is its resolution."""
    joined = posixpath.normpath(posixpath.join(str(root), *parts))
    if joined != str(root) and not joined.startswith(str(root) + "/"):
        return None
    current = root
    for part in Path(joined).relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return None
    return current.resolve()


@PROPERTY
@given(parts=_PARTS)
def test_confined_refuses_exactly_what_leaves_the_root_or_crosses_a_link(tree, parts):
    expected = _expected(tree, parts)
    path = tree.joinpath(*parts)
    if expected is None:
        with pytest.raises(UnsafePathError):
            confined(tree, path)
        return
    got = confined(tree, path)
    assert got == expected
    assert got == tree.resolve() or tree.resolve() in got.parents
    assert not any(p.is_symlink() for p in [got, *got.parents] if tree.resolve() in p.parents)


# ------------------------------------------------------------------------ collection names: one folder, inside
@PROPERTY
@given(
    name=st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)
    | st.text(max_size=20)
    | st.sampled_from(["..", ".", "a/b", "../x", "-x", ".hidden", "ok.name", "a" * 256, "a" * 255])
)
def test_an_edge_collection_name_is_one_folder_inside_the_collections_folder(tree, name):
    from instructor_qdrant.edge import check_collection_name

    try:
        checked = check_collection_name(name)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert checked == name and 1 <= len(name) <= 255
    assert name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
    assert not name.startswith((".", "-"))
    folder = confined(tree, tree / "a" / name, what="collection")
    assert folder.parent == (tree / "a").resolve() and folder.name == name
