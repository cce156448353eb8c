"""Lesson 01 exercises: the master's solutions pass every check, realistic wrong answers fail with
a message that says what is wrong, and the unfinished stub fails cleanly."""

from __future__ import annotations

import sys
from pathlib import Path

import exercise_helpers as helpers
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from greenlab.course import autograder

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "01_baselines.ipynb"

stub = helpers.stub
SOLUTION = helpers.master_namespace(MASTER)


def _run(question: str, answers: dict) -> list[autograder.TestResult]:
    with threadpool_limits(limits=1):  # tiny BLAS problems: extra threads only spin-wait
        return helpers.answers_results(MASTER, question, answers)


def assert_passes(question: str, answers: dict) -> None:
    with threadpool_limits(limits=1):
        helpers.assert_all_pass(MASTER, question, answers)


def assert_fails(question: str, answers: dict, expected: str, answer_may_raise=False) -> None:
    with threadpool_limits(limits=1):
        helpers.assert_rejects(MASTER, question, answers, expected, answer_may_raise)


def test_master_has_public_and_hidden_tests():
    helpers.assert_public_and_hidden(MASTER, ["q1", "q2", "q3"])


# --------------------------------------------------------------------------- q1: train_logistic

def test_q1_solution_passes():
    assert_passes("q1", {"train_logistic": SOLUTION["train_logistic"]})


def _unfitted(x, y):
    return LogisticRegression(max_iter=1000)


def _predictions(x, y):
    return LogisticRegression(max_iter=1000).fit(x, y).predict(x)


def _few_samples(x, y):
    return LogisticRegression(max_iter=1000).fit(x[:40], y[:40])


def _always_digits(x, y):
    import greenlab as gl

    digits = gl.data.load("digits")
    return LogisticRegression(max_iter=1000).fit(digits.x_train, digits.y_train)


def _a_tree(x, y):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=0).fit(x, y)


@pytest.mark.parametrize("wrong, expected", [
    (_unfitted, "the model is not fitted: call model.fit(x, y)"),
    (_predictions, "should return the fitted LogisticRegression, got ndarray"),
    (_few_samples, "expected accuracy >= 95.0%, got"),
    (_always_digits, "must fit on the x it is given (expected 30 features"),
    (_a_tree, "should return the fitted LogisticRegression, got DecisionTreeClassifier"),
], ids=["not-fitted", "returns-predictions", "40-samples", "ignores-arguments", "decision-tree"])
def test_q1_wrong_answers_fail(wrong, expected):
    assert_fails("q1", {"train_logistic": wrong}, expected)


def test_q1_stub_fails_cleanly():
    assert_fails("q1", {"train_logistic": stub}, "train_logistic returned None")


# --------------------------------------------------------------------------- q2: model_size_bytes

def test_q2_solution_passes():
    assert_passes("q2", {"model_size_bytes": SOLUTION["model_size_bytes"]})


@pytest.mark.parametrize("wrong, expected", [
    (lambda model: sys.getsizeof(model), "in bytes should be"),          # the Python object header
    (lambda model: model.coef_.nbytes, "in bytes should be"),            # the coefficients only
    (lambda model: len(__import__("pickle").dumps(model)) / 1024, "in bytes should be"),  # KiB
], ids=["getsizeof", "coef-nbytes", "kibibytes"])
def test_q2_wrong_answers_fail(wrong, expected):
    # coef-nbytes also raises AttributeError on the hidden test's forest: the learner sees that too
    assert_fails("q2", {"model_size_bytes": wrong}, expected, answer_may_raise=True)


def test_q2_wrong_answer_reports_both_sizes():
    import pickle

    model = LogisticRegression(max_iter=200).fit(
        np.random.default_rng(0).normal(size=(60, 5)), np.arange(60) % 3)
    expected = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    results = _run("q2", {"model_size_bytes": lambda m: m.coef_.nbytes})
    assert f"should be {expected}, got 120" in results[0].message, results[0].message


def test_q2_stub_fails_cleanly():
    assert_fails("q2", {"model_size_bytes": stub}, "is None: did you return it?")


# --------------------------------------------------------------------------- q3: count_parameters

def test_q3_solution_passes():
    assert_passes("q3", {"count_parameters": SOLUTION["count_parameters"]})


@pytest.mark.parametrize("wrong, expected", [
    (lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight")),
     "should be 195, got 176"),                                               # weights only
    (lambda m: len(list(m.parameters())), "should be 195, got 4"),            # tensors, not values
    (lambda m: sum(p.shape[0] for p in m.parameters()), "should be 195, got 38"),  # rows only
], ids=["weights-only", "tensor-count", "first-dimension"])
def test_q3_wrong_answers_fail(wrong, expected):
    assert_fails("q3", {"count_parameters": wrong}, expected)


def test_q3_stub_fails_cleanly():
    assert_fails("q3", {"count_parameters": stub}, "is None: did you return it?")
