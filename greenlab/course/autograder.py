"""Masters to autograders: otter-grader's ``assign`` and the cached autograder zips.

* ``question_tests`` / ``run_question``: run one question's tests of a master notebook against answers
  you pass in (``tests/test_exercises_*.py`` use them to prove that wrong answers are rejected).
* ``assign`` / ``autograder``: ``otter assign`` a master (``solutions/NN_name.ipynb``) into the
  learner's notebook and the autograder zip (cached under ``build/autograder/``, each zip checked
  against the SHA-256 recorded when it was built).
* ``find_master``: a lesson's master, from the grader's ``solutions/`` only, by a strict name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._internal.atomic import replacing

__all__ = ["TestResult", "question_tests", "run_question", "Assigned", "assign", "autograder",
           "find_master", "solutions_dir", "LESSON_NAME", "questions", "write_json"]

_QUESTION = re.compile(r"#\s*BEGIN QUESTION\s*\n(?:.*\n)*?\s*name:\s*(\S+)", re.M)
_BLOCK = re.compile(r"#\s+(BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)\b", re.I)
_IN_CELL_SOLUTION = re.compile(r"#\s*(BEGIN SOLUTION|SOLUTION\s*$)", re.M)
_PYTHON3 = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LESSON_NAME = re.compile(r"\d\d_[a-z0-9_]+")  # a master's name: "02_pruning"; never a path


@dataclass(frozen=True)
class TestResult:
    question: str
    index: int
    hidden: bool
    passed: bool
    message: str


def question_tests(master: str | Path) -> dict[str, list[tuple[bool, str]]]:
    """``{question: [(hidden, test source), ...]}`` from an otter master notebook."""
    import nbformat

    path = Path(master)
    if not path.is_file():
        raise ValueError(f"master must be an existing notebook file, got {str(path)!r}")
    nb = nbformat.read(path, as_version=4)
    out: dict[str, list[tuple[bool, str]]] = {}
    question, in_tests = None, False
    for cell in nb.cells:
        src = cell.source.strip()
        if cell.cell_type == "raw":
            m = _QUESTION.search(src + "\n")
            if m:
                question = m.group(1)
                out[question] = []
            elif src.startswith("# BEGIN TESTS"):
                in_tests = True
            elif src.startswith("# END TESTS"):
                in_tests = False
            elif src.startswith("# END QUESTION"):
                question = None
        elif cell.cell_type == "code" and in_tests and question:
            hidden = bool(re.search(r"^hidden:\s*true", src, re.M | re.I))
            out[question].append((hidden, src))
    return out


def run_question(master: str | Path, question: str, answers: dict) -> list[TestResult]:
    """Run every test of ``question`` (public and hidden) with ``answers`` as the learner's names.

    A test passes when it runs without exception; the message is the check's own message.
    """
    if not isinstance(answers, dict):
        raise TypeError(f"answers must be a dict of name -> value, got {type(answers).__name__}")
    tests = question_tests(master)
    if question not in tests:
        raise ValueError(f"question must be one of {sorted(tests)}, got {question!r}")
    results = []
    for i, (hidden, src) in enumerate(tests[question]):
        namespace = {"__name__": "__otter_test__", **answers}
        try:
            exec(compile(src, f"<{question} test {i}>", "exec"), namespace)
        except Exception as exc:  # a failing check or a broken answer: both are failures
            results.append(TestResult(question, i, hidden, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.append(TestResult(question, i, hidden, True, ""))
    return results


# --- master -> learner's notebook + autograder zip ------------------------------------------------

@dataclass(frozen=True)
class Assigned:
    """What ``otter assign`` made of a master: the learner's notebook and the autograder zip."""

    student: Path
    autograder: Path


def _prepare_master(nb, name: str) -> None:
    """Make a master ready for ``otter assign``, in place (the master file itself is untouched).

    Names the assignment (so a notebook is only graded by its own autograder), adds a python3
    kernelspec when missing, and wraps a solution cell that carries only in-cell markers
    (``# BEGIN SOLUTION`` inside a question, the short form in CONTRIBUTING.md) in otter's raw
    ``# BEGIN SOLUTION`` / ``# END SOLUTION`` cells: otter strips solutions only inside such a
    block, and would otherwise ship the solution to learners in a locked cell.
    """
    import nbformat

    nb.metadata.setdefault("kernelspec", dict(_PYTHON3))
    cells, stack = [], []
    for cell in nb.cells:
        src = cell.source.strip()
        block = _BLOCK.match(src) if cell.cell_type == "raw" else None
        if cell.cell_type == "raw" and src.startswith("# ASSIGNMENT CONFIG"):
            if not re.search(r"^name:", src, re.M):
                cell.source = f"{src}\nname: {name}"
        elif block and block.group(1).upper() == "BEGIN":
            stack.append(block.group(2).upper())
        elif block and stack:
            stack.pop()
        elif (cell.cell_type == "code" and stack == ["QUESTION"]
              and _IN_CELL_SOLUTION.search(cell.source)):
            cells += [nbformat.v4.new_raw_cell("# BEGIN SOLUTION"), cell,
                      nbformat.v4.new_raw_cell("# END SOLUTION")]
            continue
        cells.append(cell)
    nb.cells = cells


def assign(master: str | Path, out_dir: str | Path) -> Assigned:
    """Run ``otter assign`` (no PDFs, tests not re-run: nbval runs the masters) into ``out_dir``."""
    import nbformat
    from otter.assign import main as otter_assign

    master = Path(master).resolve()
    if not master.is_file() or master.suffix != ".ipynb":
        raise ValueError(f"master must be an existing .ipynb file, got {str(master)!r}")
    out = Path(out_dir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "master").mkdir(parents=True)
    nb = nbformat.read(master, as_version=4)
    _prepare_master(nb, master.stem)
    nbformat.write(nb, out / "master" / master.name)
    with contextlib.redirect_stdout(sys.stderr):
        otter_assign(str(out / "master" / master.name), str(out / "dist"), no_pdfs=True,
                     no_run_tests=True)
    zips = sorted((out / "dist" / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"otter assign made {len(zips)} autograder zips for {master.name}")
    return Assigned(out / "dist" / "student" / master.name, zips[0])


def _cache_key(master: Path) -> str:
    """What a cached zip was built from: the master, this module (the preparing code) and otter."""
    from importlib.metadata import version

    key = hashlib.sha256(master.read_bytes())
    key.update(Path(__file__).read_bytes())
    key.update(version("otter-grader").encode())
    return key.hexdigest()


def _record(zip_path: Path) -> Path:
    """The JSON beside a cached zip: its SHA-256, cache key and points per question."""
    return zip_path.with_name(f"{zip_path.stem}.json")


def _verified(zip_path: Path, key: str | None = None) -> dict | None:
    """The record of ``zip_path`` if the zip is the one it describes (and was built for ``key``)."""
    try:
        record = json.loads(_record(zip_path).read_text(encoding="utf-8"))
        ok = (isinstance(record, dict) and key in (None, record.get("key"))
              and record.get("sha256") == hashlib.sha256(zip_path.read_bytes()).hexdigest())
    except (OSError, ValueError):
        return None
    return record if ok else None


def autograder(master: str | Path, build_dir: str | Path | None = None,
               zip_path: str | Path | None = None) -> Path:
    """The autograder zip of ``master``, rebuilt when the master, this module or otter changed,
    or when the cached zip is not byte for byte the one recorded when it was built.

    Args:
        master: the master notebook, e.g. ``solutions/02_pruning.ipynb``.
        build_dir: where zips are kept; default ``build/autograder`` beside ``solutions/``
            (a temporary folder for a master elsewhere).
        zip_path: a zip ``assign`` just made from this master, stored instead of rebuilding.
    """
    master = Path(master).resolve()
    if not master.is_file():
        raise ValueError(f"master must be an existing notebook file, got {str(master)!r}")
    if build_dir is None:  # the repository's build/ for its solutions/, else a temporary folder
        build_dir = (master.parent.parent / "build" if master.parent.name == "solutions"
                     else Path(tempfile.gettempdir()) / "greenlab-build") / "autograder"
    build = Path(build_dir)
    key = _cache_key(master)
    target = build / f"{master.stem}-{key[:12]}.zip"
    if zip_path is None and target.is_file() and _verified(target, key) is not None:
        return target
    build.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="greenlab-assign-") as tmp:
        made = Path(zip_path) if zip_path else assign(master, tmp).autograder
        for old in build.glob(f"{master.stem}-*.zip"):
            if old != target:
                old.unlink(missing_ok=True)
                _record(old).unlink(missing_ok=True)
                old.with_name(f"{old.stem}.points.json").unlink(missing_ok=True)  # older layout
        with replacing(target) as partial:
            shutil.copyfile(made, partial)
            record = {"sha256": hashlib.sha256(partial.read_bytes()).hexdigest(), "key": key,
                      "points": _points(partial)}  # grading needs no otter import
            write_json(record, _record(target))
    return target


def solutions_dir() -> Path:
    """The grader's ``solutions/``: beside the greenlab package (a checkout), else in the
    working directory. Never a folder found from the notebook being graded."""
    beside = Path(__file__).resolve().parents[2] / "solutions"
    return beside if beside.is_dir() else Path.cwd() / "solutions"


def find_master(name: str, solutions: str | Path | None = None) -> Path:
    """``<solutions>/<name>.ipynb`` for a lesson ``name`` ("02_pruning"), or for a lesson number
    ("02") the one master starting with it; ``solutions`` defaults to ``solutions_dir()``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a lesson name like '02_pruning', got {type(name).__name__}")
    folder = Path(solutions) if solutions is not None else solutions_dir()
    if re.fullmatch(r"\d\d", name):
        found = sorted(folder.glob(f"{name}_*.ipynb"))
        if len(found) != 1:
            raise ValueError(f"lesson {name}: expected one master {folder}/{name}_*.ipynb, found "
                             f"{len(found)}: pass --master")
        name = found[0].stem
    if not LESSON_NAME.fullmatch(name):
        raise ValueError(f"name must be a lesson name like '02_pruning' (digits, underscore, a-z, "
                         f"0-9), got {name[:80]!r}")
    candidate = folder / f"{name}.ipynb"
    if not candidate.is_file():
        raise ValueError(f"no master solutions/{name}.ipynb in {str(folder)!r}: pass --master, "
                         "--solutions or --autograder")
    return candidate


def _points(zip_path: Path) -> dict[str, float]:
    import zipfile

    from otter.test_files import ExceptionTestFile

    out = {}
    with zipfile.ZipFile(zip_path) as zf:
        for member in sorted(zf.namelist()):
            if re.fullmatch(r"tests/[^/]+\.py", member):
                test = ExceptionTestFile.from_string(zf.read(member).decode(), path=member)
                out[test.name] = float(test.possible)
    return out


def questions(zip_path: Path) -> dict[str, float]:
    """``{question: max points}`` of an autograder zip: from its record when the record matches
    the zip's bytes, else read from its test files."""
    record = _verified(Path(zip_path))
    return dict(record["points"]) if record else _points(Path(zip_path))


def write_json(data: dict, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new, never half)."""
    with replacing(path) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)  # open(): the usual permissions (umask)
        f.write("\n")
