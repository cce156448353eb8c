"""Masters to autograders: otter-grader's ``assign`` and the cached autograder zips.

* ``question_tests`` / ``run_question``: run one question's tests of a master notebook against answers
  you pass in (``tests/test_exercises_*.py`` use them to prove that wrong answers are rejected).
* ``assign`` / ``autograder``: ``otter assign`` a master (``solutions/NN_name.ipynb``) into the
  learner's notebook and the autograder zip (cached under ``build/autograder/``).
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
           "find_master", "questions", "write_json"]

_QUESTION = re.compile(r"#\s*BEGIN QUESTION\s*\n(?:.*\n)*?\s*name:\s*(\S+)", re.M)
_BLOCK = re.compile(r"#\s+(BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)\b", re.I)
_IN_CELL_SOLUTION = re.compile(r"#\s*(BEGIN SOLUTION|SOLUTION\s*$)", re.M)
_PYTHON3 = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_PREPARE_VERSION = "1"  # bump when _prepare_master changes, so cached autograder zips are rebuilt


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


def autograder(master: str | Path, build_dir: str | Path | None = None,
               zip_path: str | Path | None = None) -> Path:
    """The autograder zip of ``master``, rebuilt only when the master (or otter) changed.

    Args:
        master: the master notebook, e.g. ``solutions/02_pruning.ipynb``.
        build_dir: where zips are kept; default ``build/autograder`` beside ``solutions/``
            (a temporary folder for a master elsewhere).
        zip_path: a zip ``assign`` just made from this master, stored instead of rebuilding.
    """
    from importlib.metadata import version

    master = Path(master).resolve()
    if not master.is_file():
        raise ValueError(f"master must be an existing notebook file, got {str(master)!r}")
    if build_dir is None:  # the repository's build/ for its solutions/, else a temporary folder
        build_dir = (master.parent.parent / "build" if master.parent.name == "solutions"
                     else Path(tempfile.gettempdir()) / "greenlab-build") / "autograder"
    build = Path(build_dir)
    key = master.read_bytes() + f"{_PREPARE_VERSION} {version('otter-grader')}".encode()
    target = build / f"{master.stem}-{hashlib.sha256(key).hexdigest()[:12]}.zip"
    if target.is_file():
        if not _points_file(target).is_file():
            write_json(questions(target), _points_file(target))
        return target
    build.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="greenlab-assign-") as tmp:
        made = Path(zip_path) if zip_path else assign(master, tmp).autograder
        for old in build.glob(f"{master.stem}-*.zip"):
            if old != target:
                old.unlink(missing_ok=True)
                _points_file(old).unlink(missing_ok=True)
        with replacing(target) as partial:
            shutil.copyfile(made, partial)
            write_json(questions(partial), _points_file(target))  # grading needs no otter import
    return target


def find_master(notebook: str | Path, name: str | None = None) -> Path:
    """``solutions/<name>.ipynb`` in a folder above ``notebook`` or above the working directory."""
    path = Path(notebook).resolve()
    name = name or path.stem
    for folder in [path.parent, *path.parents, Path.cwd(), *Path.cwd().parents]:
        candidate = folder / "solutions" / f"{name}.ipynb"
        if candidate.is_file():
            return candidate
    raise ValueError(f"no master solutions/{name}.ipynb found above {str(path.parent)!r} or the "
                     "working directory: pass --master or --autograder")


def _points_file(zip_path: Path) -> Path:
    return zip_path.with_name(f"{zip_path.stem}.points.json")


def questions(zip_path: Path) -> dict[str, float]:
    """``{question: max points}`` from the test files in an autograder zip (or its points file)."""
    import zipfile

    if _points_file(zip_path).is_file():
        return json.loads(_points_file(zip_path).read_text(encoding="utf-8"))

    from otter.test_files import ExceptionTestFile

    out = {}
    with zipfile.ZipFile(zip_path) as zf:
        for member in sorted(zf.namelist()):
            if re.fullmatch(r"tests/[^/]+\.py", member):
                test = ExceptionTestFile.from_string(zf.read(member).decode(), path=member)
                out[test.name] = float(test.possible)
    return out


def write_json(data: dict, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (a reader sees the old file or the new, never half)."""
    with replacing(path) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)  # open(): the usual permissions (umask)
        f.write("\n")
