"""Lesson 01 exercises: the master's solutions pass every check, realistic wrong answers fail with
a message that says what is wrong, and the unfinished stub fails cleanly."""

from __future__ import annotations

import math
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
    helpers.assert_public_and_hidden(MASTER, ["q1", "q2", "q3", "q4"])


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


# --------------------------------------------------------------------------- q3: break_even_predictions

FOREST_CNN = 270 / 650e-6  # the public test's forest (30 J, 750 uJ) and CNN (300 J, 100 uJ)


def test_q3_solution_passes():
    assert_passes("q3", {"break_even_predictions": SOLUTION["break_even_predictions"]})


def test_q3_solution_values():
    f = SOLUTION["break_even_predictions"]
    a, b = {"train_energy_j": 1.0, "infer_uj_per_sample": 3.0}, {"train_energy_j": 2.0,
                                                                 "infer_uj_per_sample": 1.0}
    assert f(a, b) == f(b, a) == pytest.approx(1.0 / 2e-6)
    assert f(a, a) == math.inf and f({**a, "train_energy_j": 2.0}, b) == math.inf


def _keys(r):
    return r["train_energy_j"], r["infer_uj_per_sample"]


def _no_unit_conversion(a, b):  # uJ used as J: a million times too few predictions
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    return (tb - ta) / (ea - eb)


def _millijoules(a, b):  # uJ -> J with 1e3
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    return (tb - ta) / ((ea - eb) / 1e3)


def _one_model_ratio(a, b):  # the lesson's per-model figure: training = inference, for b alone
    tb, eb = _keys(b)
    return tb / (eb / 1e6)


def _sign_flipped(a, b):  # extra training over extra inference energy: negative
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    return (tb - ta) / ((eb - ea) / 1e6)


def _abs_never_inf(a, b):  # a crossing at n < 0 read as a break-even
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    return abs((tb - ta) / ((ea - eb) / 1e6))


def _negative_not_inf(a, b):  # no check that the crossing is at n > 0
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    return (tb - ta) / ((ea - eb) / 1e6)


def _none_for_never(a, b):
    n = _negative_not_inf(a, b)
    return n if n > 0 else None


def _order_matters(a, b):  # assumes b is the one that costs more to train
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    n = (tb - ta) / ((ea - eb) / 1e6)
    return n if tb > ta and n > 0 else math.inf


def _crashes_on_equal_inference(a, b):  # ZeroDivisionError when both cost the same per prediction
    (ta, ea), (tb, eb) = _keys(a), _keys(b)
    n = (tb - ta) / ((ea - eb) / 1e6)
    return n if n > 0 else math.inf


@pytest.mark.parametrize("wrong, expected", [
    (_no_unit_conversion, f"should be {FOREST_CNN:.6g}, got 0.415385"),
    (_millijoules, f"should be {FOREST_CNN:.6g}, got 415.385"),
    (_one_model_ratio, f"should be {FOREST_CNN:.6g}, got 3e+06"),
    (_sign_flipped, f"should be {FOREST_CNN:.6g}, got -415385"),
    (_abs_never_inf, "should be math.inf: the tree costs less to train"),
    (_negative_not_inf, "should be math.inf: the tree costs less to train"),
    (_none_for_never, "the forest never pays off; got None"),
    (_order_matters, "(the same two models, swapped) should be 415385, got inf"),
    (_crashes_on_equal_inference, "raised ZeroDivisionError"),
], ids=["uJ-as-J", "mJ", "one-model-ratio", "sign", "abs", "negative", "none", "order",
        "equal-inference"])
def test_q3_wrong_answers_fail(wrong, expected):
    assert_fails("q3", {"break_even_predictions": wrong}, expected)


def test_q3_stub_fails_cleanly():
    assert_fails("q3", {"break_even_predictions": stub},
                 "returned None: did you return the number of predictions?")


# --------------------------------------------------------------------------- q4: max_filter_responses

def _windows(x, width):
    return np.lib.stride_tricks.sliding_window_view(np.asarray(x), width, axis=1)


def _mean_pool(x, filters):  # the average response: a linear map of the signal again
    return (_windows(x, filters.shape[1]) @ filters.T).mean(axis=1)


def _no_pool(x, filters):  # one feature per position and filter: position-specific again
    r = _windows(x, filters.shape[1]) @ filters.T
    return r.reshape(len(x), -1)


def _argmax(x, filters):  # where the best match is, not how good: moves with the pattern
    return (_windows(x, filters.shape[1]) @ filters.T).argmax(axis=1).astype(float)


def _abs_max(x, filters):  # the strongest response of either sign
    return np.abs(_windows(x, filters.shape[1]) @ filters.T).max(axis=1)


def _flipped(x, filters):  # np.convolve flips the filter: a convolution, not the dot product
    return _windows(x, filters.shape[1]) @ filters[:, ::-1].T


def _flipped_max(x, filters):
    return _flipped(x, filters).max(axis=1)


def _zero_padded(x, filters):  # windows that run off the ends, filled with zeros
    w = filters.shape[1]
    padded = np.pad(np.asarray(x, dtype=float), ((0, 0), (w - 1, w - 1)))
    return (_windows(padded, w) @ filters.T).max(axis=1)


def _wrap_around(x, filters):  # circular: the last samples continue with the first
    w = filters.shape[1]
    wrapped = np.concatenate([x, np.asarray(x)[:, :w - 1]], axis=1)
    return (_windows(wrapped, w) @ filters.T).max(axis=1)


def test_q4_solution_passes():
    assert_passes("q4", {"max_filter_responses": SOLUTION["max_filter_responses"]})


@pytest.mark.parametrize("wrong, expected, may_raise", [
    (_mean_pool, "(by hand: [[3, 2], [-2, 2]])", False),
    (_no_pool, "should have shape (2, 2), got (2, 10)", False),
    (_argmax, "(by hand: [[3, 2], [-2, 2]])", False),
    (_abs_max, "(by hand: [[3, 2], [-2, 2]])", False),
    (_flipped_max, "(by hand: [[3, 2], [-2, 2]])", False),
    (_zero_padded, "(by hand: [[3, 2], [-2, 2]])", False),
    (_wrap_around, "max_filter_responses(20 random signals of 30, 4 filters of width 7)", False),
], ids=["mean", "no-pooling", "argmax", "abs", "flipped", "zero-padded", "wrap-around"])
def test_q4_wrong_answers_fail(wrong, expected, may_raise):
    assert_fails("q4", {"max_filter_responses": wrong}, expected, answer_may_raise=may_raise)


def test_q4_mean_pooling_fails_the_accuracy_check_too():
    # past the value checks (they come first in the hidden test), the idea itself: the mean of a
    # filter's responses is a linear map of the signal, and scores like the raw signal
    import greenlab as gl

    data = gl.data.load("mnist1d")
    filters = np.random.default_rng(0).normal(size=(16, 5))
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with threadpool_limits(limits=1):
        accs = {}
        for name, f in (("max", SOLUTION["max_filter_responses"]), ("mean", _mean_pool)):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
            model.fit(f(data.x_train, filters), data.y_train)
            accs[name] = model.score(f(data.x_test, filters), data.y_test)
    assert accs["max"] >= 0.80 > 0.40 > accs["mean"], accs


def test_q4_stub_fails_cleanly():
    assert_fails("q4", {"max_filter_responses": stub}, "returned None: did you return the (n, k) array?")
