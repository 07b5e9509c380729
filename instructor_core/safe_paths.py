"""Paths inside a folder someone else may have handed over: no following links, no leaving the folder.

A store folder (or a model's ONNX cache) can come from a tarball or a shared drive. A symbolic link
planted in it must never make instructor truncate, delete or write a file outside it, and a FIFO or
a folder where a file is expected must give one line, not a traceback. The helpers here:

- :func:`open_regular_file` opens a file with ``O_NOFOLLOW`` (never through a link), never
  truncating on open, and refuses anything but a regular file with one link;
- :func:`confined` resolves a path and refuses it when it leaves the root or passes through a
  link below the root;
- :func:`safe_rmtree` deletes a folder only after :func:`confined` allows it;
- :func:`atomic_output` writes a file through a temporary file in the target folder, then
  ``os.replace``: a reader sees the old file or the whole new one, never a part.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

from instructor_core.errors import InputError, InputFileError, InstructorError, OutputError

__all__ = [
    "UnsafePathError",
    "atomic_output",
    "check_input_file",
    "confined",
    "disk_full",
    "load_json_object",
    "open_regular_file",
    "safe_rmtree",
    "same_file",
    "write_failure",
]


class UnsafePathError(InstructorError, ValueError):
    """A path that instructor will not open, write or delete: a link, a FIFO, a folder where a
    file is expected, or a path that leaves the folder it must stay in."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular_file(path: str | os.PathLike[str], *, what: str = "file") -> int:
    """Open ``path`` read-write, creating it if missing, without following a link or truncating.

    Args:
        path: The file.
        what: What the file is, for the error message ("lock file").

    Returns:
        An open file descriptor on a regular file.

    Raises:
        UnsafePathError: ``path`` is a symbolic link (dangling or not), a FIFO, a folder, a device,
            or a regular file with other hard links (writing it would change another file too).
        InstructorError: The file is missing and the disk is full (one line).
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise UnsafePathError(f"{what} {path} is {_kind(mode)}, not a regular file; remove it and run again")
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):  # swapped for a link or a folder since lstat
            raise UnsafePathError(f"{what} {path} is not a regular file ({exc.strerror}); remove it") from None
        if disk_full(exc):
            raise InstructorError(f"{what} {path} cannot be created: the disk is full ({exc.strerror})") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"{what} {path} is {_kind(info.st_mode)}, not a regular file; remove it")
        if info.st_nlink > 1:
            raise UnsafePathError(
                f"{what} {path} has {info.st_nlink} hard links: writing it would change another file; remove it"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def confined(root: str | os.PathLike[str], path: str | os.PathLike[str], *, what: str = "path") -> Path:
    """``path`` resolved, after checking that it stays inside ``root`` and that no part of it
    below ``root`` is a symbolic link.

    Args:
        root: The folder ``path`` must stay in (a link above it, the user's own choice, is followed).
        path: A path inside ``root`` (absolute, or relative to the working folder); need not exist.
        what: What the path is, for the error message.

    Raises:
        UnsafePathError: A part of ``path`` below ``root`` is a link, or ``path`` lies outside it.
    """
    base = Path(root).resolve()
    target = Path(path)
    target = target if target.is_absolute() else Path.cwd() / target
    try:
        relative = Path(os.path.abspath(target)).relative_to(os.path.abspath(root))
    except ValueError:
        raise UnsafePathError(f"{what} {path} is outside {root}") from None
    current = base
    for part in relative.parts:
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafePathError(f"{what} {path} leaves {root} ('..')")
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(
                f"{what} {path}: {current} is a symbolic link (to {os.readlink(current)}); "
                f"instructor does not follow links inside {root}"
            )
    resolved = current.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(f"{what} {path} resolves to {resolved}, outside {root}")
    return resolved


def safe_rmtree(root: str | os.PathLike[str], path: str | os.PathLike[str], *, missing_ok: bool = True) -> None:
    """Delete the folder ``path`` inside ``root``, never through a link.

    Raises:
        UnsafePathError: As :func:`confined`.
    """
    target = confined(root, path, what="folder")
    if not target.exists():
        if missing_ok:
            return
        raise FileNotFoundError(f"{path} does not exist")
    shutil.rmtree(target)


def load_json_object(path: str | os.PathLike[str]) -> dict:
    """The JSON object in ``path``.

    Raises:
        OSError: The file cannot be read.
        ValueError: One line: not UTF-8, not JSON, nested too deeply to read, or not an object.
    """
    text = Path(path).read_bytes()
    try:
        data = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise InputError("the JSON is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, found {type(data).__name__}")
    return data


def check_input_file(path: Path, what: str) -> None:
    """Refuse an input path that is missing or a folder, saying which; a file, a named pipe
    (``mkfifo``) or ``<(command)`` is read.

    Raises:
        InputFileError: It does not exist.
        InputError: It is a folder.
    """
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; expected a file")
    if not path.exists():
        raise InputFileError(f"{what} {path} does not exist")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are the same file (through links, hard links and ``..`` too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is the operating system saying the disk is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def write_failure(exc: OSError) -> str:
    """Why a write failed, in a few words: the disk is full, a file size limit, or the system's text
    (numpy's short write has no errno: "N requested and M written")."""
    if disk_full(exc):
        return f"the disk is full: {exc.strerror or exc}"
    if exc.errno == errno.EFBIG:
        return f"over the file size limit: {exc.strerror}"
    if exc.errno is None:
        return f"{exc}: a full disk or a file size limit?"
    return exc.strerror or str(exc)


def _mode_for(target: Path) -> int:
    """The permission bits a file written at ``target`` gets: the existing file's, else 0o666 less
    the umask (what ``open(target, "w")`` would give)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: Literal["w", "wb"] = "wb", *, what: str = "output"
) -> Iterator[IO]:
    """Write ``path`` through a temporary file in its folder, renamed over ``path`` on success.

    On any error (a full disk included) the temporary file is removed and ``path`` is left as it
    was. The file keeps the mode of the one it replaces (a new one:
    0o666 less the umask). The folder must exist: a mistyped folder is an error, not created silently.

    Raises:
        FileNotFoundError: The folder does not exist.
        UnsafePathError: ``path`` is a folder.
        OutputError: A write failed (a full disk, a file size limit): one line, nothing written.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} folder {parent} does not exist (it is not created for you)")
    if target.is_dir():
        raise UnsafePathError(f"{what} {target} is a folder")
    mode_kept = _mode_for(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        encoding = "utf-8" if mode == "w" else None
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode_kept)  # mkstemp makes 0600: keep the old file's mode, or the umask's
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, InstructorError):
            raise OutputError(f"{what} {target}: cannot write it ({write_failure(exc)}); nothing was written") from exc
        raise
