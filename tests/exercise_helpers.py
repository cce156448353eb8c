"""Shared by tests/test_exercises_NN.py: pull a solution out of a master, and assert that a question
accepts an answer or rejects it cleanly with a given message."""

from pathlib import Path

import nbformat

from greenlab.course.autograder import question_tests, run_question


def master_solution(master: Path, name: str, namespace: dict):
    """The solution function ``name``, executed from the master's code cell that defines it."""
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "code" and f"def {name}(" in cell.source and "BEGIN SOLUTION" in cell.source:
            namespace = dict(namespace)
            exec(compile(cell.source, f"<master {name}>", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"no solution cell defines {name} in {master}")


# A check that failed on purpose: greenlab.course.checks raises CheckFailed, plain test cells assert.
# Anything else (TypeError, NameError, ...) means the test itself crashed on the answer.
CLEAN_FAILURES = ("CheckFailed", "AssertionError")


def answers_results(master: Path, question: str, answers: dict) -> list:
    """Every test result of ``question`` (public and hidden) run against ``answers``."""
    results = run_question(master, question, answers)
    assert results, f"{question} has no tests"
    return results


def assert_all_pass(master: Path, question: str, answers: dict) -> None:
    failed = [r.message for r in answers_results(master, question, answers) if not r.passed]
    assert not failed, failed


def assert_rejects(master: Path, question: str, answers: dict, text: str | tuple[str, ...],
                   answer_may_raise: bool = False) -> None:
    """At least one test fails, cleanly (a failed check, not a crash), with ``text`` (or every
    fragment of a tuple of them) in its message. ``answer_may_raise``: other tests may fail because
    the wrong answer itself raises on their inputs (the learner then sees their own exception)."""
    fragments = (text,) if isinstance(text, str) else text
    failed = [r for r in answers_results(master, question, answers) if not r.passed]
    messages = [r.message for r in failed]
    assert failed, f"{question} accepted a wrong answer"
    assert any(all(f in m for f in fragments) and m.startswith(CLEAN_FAILURES)
               for m in messages), messages
    if not answer_may_raise:
        assert all(m.startswith(CLEAN_FAILURES) for m in messages), messages


def assert_passes(master: Path, question: str, name: str, answer) -> None:
    assert_all_pass(master, question, {name: answer})


def assert_fails(master: Path, question: str, name: str, answer, text: str) -> None:
    assert_rejects(master, question, {name: answer}, text)


def assert_public_and_hidden(master: Path, questions: list[str]) -> None:
    """The master has exactly ``questions``, each with a public and a hidden test."""
    tests = question_tests(master)
    assert sorted(tests) == questions
    for question, cells in tests.items():
        assert any(not hidden for hidden, _ in cells), f"{question}: no public test"
        assert any(hidden for hidden, _ in cells), f"{question}: no hidden test"


def stub(*args, **kwargs):
    ...  # what the learner's notebook holds before they answer: returns None


def master_namespace(master: Path) -> dict:
    """The master's own answers: every code cell that is neither a test nor the Colab cell, run."""
    namespace: dict = {}
    for cell in nbformat.read(master, as_version=4).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "colab-setup" in tags or "BEGIN TEST CONFIG" in cell.source:
            continue
        exec(compile(cell.source, str(master), "exec"), namespace)
    return namespace
