"""Shared by tests/test_exercises_NN.py: pull a solution out of a master, and assert that a question
accepts an answer or rejects it cleanly with a given message."""

from pathlib import Path

import nbformat

from greenlab.grade import run_question


def master_solution(master: Path, name: str, namespace: dict):
    """The solution function ``name``, executed from the master's code cell that defines it."""
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "code" and f"def {name}(" in cell.source and "BEGIN SOLUTION" in cell.source:
            namespace = dict(namespace)
            exec(compile(cell.source, f"<master {name}>", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"no solution cell defines {name} in {master}")


def assert_passes(master: Path, question: str, name: str, answer) -> None:
    results = run_question(master, question, {name: answer})
    assert results, f"{question} has no tests"
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


def assert_fails(master: Path, question: str, name: str, answer, text: str) -> None:
    """At least one test fails, cleanly (a CheckFailed, not a crash), with ``text`` in its message."""
    failed = [r for r in run_question(master, question, {name: answer}) if not r.passed]
    assert failed, f"{question} accepted a wrong answer"
    assert all(r.message.startswith("CheckFailed") for r in failed), [r.message for r in failed]
    assert any(text in r.message for r in failed), [r.message for r in failed]


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
