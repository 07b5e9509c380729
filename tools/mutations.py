"""Mutation check: does the fast suite fail when the code is wrong?

Each entry of ``tools/mutations.toml`` is one realistic bug written as a text substitution in one
file, with the tests that must catch it. For every entry this script, on a throwaway copy of the
tree (never the real one):

1. checks that the original text occurs exactly once in the file (otherwise the entry is STALE:
   the code moved on and the entry must be updated, which counts as a failure);
2. applies the substitution, runs the entry's tests with the repository's ``.venv`` python
   (``pytest -x -q -n 0 -p no:cacheprovider -m "not system"``, ``HF_HUB_OFFLINE=1``), and puts the
   original text back. An entry with ``tier = "system"`` names system-tier tests (a bug only a real
   Ray cluster shows): its tests run without the ``not system`` filter; ``--fast`` leaves such
   entries out.

A test run that fails means the mutation was *caught*; one that passes means it *survived*; any other
pytest outcome (a collection error, no test selected) is an ERROR. Before the mutations, the union of
all named tests runs once unmutated and must pass (a test that already fails would "catch" anything).
The copy is what gets imported: ``PYTHONPATH`` puts the copy (and its ``integrations/``) first, pytest
runs from the copy, and the script checks ``instructor_core.__file__`` and ``instructor_ray.__file__``.

Usage::

    python tools/mutations.py                    # every entry; exit 1 if any survived, is stale or errs
    python tools/mutations.py --only NAME ...    # some entries
    python tools/mutations.py --rev HEAD~3 --whole-files
        # the suite as it was at a commit, each entry's whole test files: do the mutations survive it?

Stdlib only (``tomllib``: Python 3.11+).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST_ARGS = ["-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly"]
TIERS = {"fast": ["-m", "not system"], "system": []}  # the marker filter each entry's tier runs its tests under
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Mutation:
    """One entry of the list: a bug as a substitution, and the tests that must catch it."""

    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str
    tier: str = "fast"


def load(path: Path) -> list[Mutation]:
    """The entries of a mutations TOML file (``[[mutation]]`` tables)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        sys.exit("tools/mutations.py needs Python 3.11+ (tomllib); run it with the .venv python")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("mutation", []):
        missing = {"name", "file", "original", "replacement", "tests", "why"} - set(raw)
        if missing:
            sys.exit(f"{path}: entry {raw.get('name', '?')!r} lacks {sorted(missing)}")
        tier = raw.get("tier", "fast")
        if tier not in TIERS:
            sys.exit(f"{path}: entry {raw['name']!r} has tier {tier!r}; expected one of {sorted(TIERS)}")
        entries.append(Mutation(raw["name"], raw["file"], raw["original"], raw["replacement"], tuple(raw["tests"]),
                                raw["why"], tier))  # fmt: skip
    names = [e.name for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        sys.exit(f"{path}: duplicate entry names {duplicated}")
    return entries


def copy_tree(target: Path, rev: str | None) -> None:
    """The working tree's tracked and untracked-but-not-ignored files (or ``rev``'s tree) into ``target``."""
    if rev is not None:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet staged is listed and absent
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def environment(copy: Path) -> dict[str, str]:
    """The test environment: the copy first on the import path, offline, no stale bytecode."""
    env = dict(os.environ)
    data = env.get("INSTRUCTOR_DATA") or str((ROOT.parent / "shared" / "data").resolve())
    env.update(
        PYTHONPATH=os.pathsep.join([str(copy), str(copy / "integrations")]),
        HF_HUB_OFFLINE="1",
        INSTRUCTOR_DATA=data,
        PYTHONDONTWRITEBYTECODE="1",  # a restored file must never be served from the mutant's .pyc
    )
    return env


def check_imports(python: str, copy: Path, env: dict[str, str]) -> None:
    """Exit unless the copy's packages are the ones imported."""
    code = "import instructor_core, instructor_ray; print(instructor_core.__file__); print(instructor_ray.__file__)"
    out = subprocess.run([python, "-c", code], cwd=copy, env=env, capture_output=True, text=True)
    files = out.stdout.split()
    if out.returncode != 0 or len(files) != 2 or not all(Path(f).resolve().is_relative_to(copy) for f in files):
        sys.exit(f"the copy at {copy} is not what gets imported: {out.stdout.strip()} {out.stderr.strip()[-500:]}")
    print(f"imports from the copy: {files[0]}, {files[1]}")


def run_tests(python: str, copy: Path, env: dict[str, str], tests: list[str], tier: str = "fast") -> tuple[int, str]:
    """pytest's exit code and output for ``tests`` in the copy, under ``tier``'s marker filter."""
    done = subprocess.run([python, "-m", "pytest", *PYTEST_ARGS, *TIERS[tier], *tests], cwd=copy, env=env,
                          capture_output=True, text=True)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def tests_of(entry: Mutation, whole_files: bool) -> list[str]:
    """The entry's test node ids, or (``whole_files``) the files they are in."""
    if not whole_files:
        return list(entry.tests)
    return list(dict.fromkeys(t.split("::", 1)[0] for t in entry.tests))


def try_mutation(python: str, copy: Path, env: dict[str, str], entry: Mutation, whole_files: bool) -> tuple[str, str]:
    """``(outcome, detail)``: outcome caught, survived, stale or error."""
    path = copy / entry.file
    if not path.is_file():
        return "stale", f"{entry.file} does not exist"
    text = path.read_text(encoding="utf-8")
    found = text.count(entry.original)
    if found != 1:
        return "stale", f"the original text occurs {found} times in {entry.file}"
    path.write_text(text.replace(entry.original, entry.replacement), encoding="utf-8")
    try:
        code, output = run_tests(python, copy, env, tests_of(entry, whole_files), entry.tier)
    finally:
        path.write_text(text, encoding="utf-8")
    if code == 0:
        return "survived", ""
    if code == 1:
        failed = _FAILED.findall(output)
        return "caught", failed[0] if failed else "(a test failed)"
    return "error", f"pytest exit {code}: " + " | ".join(output.strip().splitlines()[-3:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", type=Path, default=ROOT / "tools" / "mutations.toml", help="the mutations file")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these entries")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the interpreter to test with")
    parser.add_argument("--rev", help="test a commit's tree instead of the working tree")
    parser.add_argument("--whole-files", action="store_true", help="run each entry's whole test files")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the named tests")
    parser.add_argument("--fast", action="store_true", help="leave out the entries whose tests are system tier")
    args = parser.parse_args(argv)
    entries = load(args.list)
    if args.only:
        unknown = sorted(set(args.only) - {e.name for e in entries})
        if unknown:
            parser.error(f"no entries named {unknown}")
        entries = [e for e in entries if e.name in args.only]
    if args.fast:
        entries = [e for e in entries if e.tier == "fast"]
    with tempfile.TemporaryDirectory(prefix="instructor-mutations-") as tmp:
        copy = Path(tmp).resolve()
        copy_tree(copy, args.rev)
        env = environment(copy)
        check_imports(args.python, copy, env)
        if not args.no_baseline:
            for tier in TIERS:
                union = list(dict.fromkeys(t for e in entries if e.tier == tier for t in tests_of(e, args.whole_files)))
                if not union:
                    continue
                code, output = run_tests(args.python, copy, env, union, tier)
                if code != 0:
                    print(output[-4000:])
                    print(f"baseline: the named {tier} tests do not pass unmutated (pytest exit {code}); "
                          "nothing was mutated")  # fmt: skip
                    return 1
                print(f"baseline: the {len(union)} {tier} test targets named pass unmutated")
        rows = []
        for entry in entries:
            outcome, detail = try_mutation(args.python, copy, env, entry, args.whole_files)
            rows.append((entry.name, outcome, detail))
            print(f"  {entry.name}: {outcome} {detail}", flush=True)
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'mutation'.ljust(width)} | result   | test that caught it (or why not)")
    print(f"{'-' * width}-|----------|{'-' * 40}")
    for name, outcome, detail in rows:
        print(f"{name.ljust(width)} | {outcome.ljust(8)} | {detail}")
    bad = [name for name, outcome, _ in rows if outcome != "caught"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} caught" + (f"; not caught: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
