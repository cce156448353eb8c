"""Grading support for the exercise notebooks (otter-grader masters in ``solutions/``).

``run_question`` executes one question's test cells from a master notebook against answers you pass
in: the tests in ``tests/test_exercises_*.py`` use it to prove that wrong answers are rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestResult", "question_tests", "run_question"]

_QUESTION = re.compile(r"#\s*BEGIN QUESTION\s*\n(?:.*\n)*?\s*name:\s*(\S+)", re.M)


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
