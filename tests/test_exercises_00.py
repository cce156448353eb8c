"""Lesson 00 exercises: the master's solutions pass every check, realistic wrong answers fail with
a message that says what is wrong, and the unfinished stub fails cleanly."""

from __future__ import annotations

from pathlib import Path

import exercise_helpers as helpers
import numpy as np
import pytest

from greenlab.course import autograder
from greenlab.meters import J_PER_KWH

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "00_measuring_energy.ipynb"

stub = helpers.stub
SOLUTION = helpers.master_namespace(MASTER)


def _run(question: str, answers: dict) -> list[autograder.TestResult]:
    return helpers.answers_results(MASTER, question, answers)


def assert_passes(question: str, answers: dict) -> None:
    helpers.assert_all_pass(MASTER, question, answers)


def assert_fails(question: str, answers: dict, expected: str) -> None:
    helpers.assert_rejects(MASTER, question, answers, expected)


def test_master_has_public_and_hidden_tests():
    helpers.assert_public_and_hidden(MASTER, ["q1", "q2", "q3"])


# --------------------------------------------------------------------------- q1: units

def q1(joules_to_kwh=None, co2e_g=None) -> dict:
    return {"joules_to_kwh": joules_to_kwh or SOLUTION["joules_to_kwh"],
            "co2e_g": co2e_g or SOLUTION["co2e_g"]}


def test_q1_solution_passes():
    assert_passes("q1", q1())


@pytest.mark.parametrize("wrong, expected", [
    (lambda energy_j: energy_j / 1000, "should be 1, got 3600"),        # kJ, not kWh
    (lambda energy_j: energy_j / 3600, "should be 1, got 1000"),        # Wh, not kWh
    (lambda energy_j: energy_j * 3.6e6, "should be 1, got 1.296e+13"),  # multiplied
], ids=["divide-by-1000", "watt-hours", "multiply"])
def test_q1_wrong_kwh_fails(wrong, expected):
    assert_fails("q1", q1(joules_to_kwh=wrong), expected)


@pytest.mark.parametrize("wrong, expected", [
    (lambda energy_j, grid: energy_j * grid, "co2e_g(3.6e6 J, 400 g/kWh) should be 400, got 1.44e+09"),
    (lambda energy_j, grid: energy_j / J_PER_KWH / grid, "should be 400, got 0.0025"),
], ids=["joules-times-intensity", "divide-by-intensity"])
def test_q1_wrong_co2e_fails(wrong, expected):
    assert_fails("q1", q1(co2e_g=wrong), expected)


def test_q1_stub_fails_cleanly():
    assert_fails("q1", {"joules_to_kwh": stub, "co2e_g": stub}, "is None: did you return it?")


# --------------------------------------------------------------------------- q2: energy from power

def test_q2_solution_passes():
    assert_passes("q2", {"energy_from_power": SOLUTION["energy_from_power"]})


def _validated(fn):
    def energy_from_power(power_w, dt_s):
        if not dt_s > 0:
            raise ValueError("dt_s must be > 0")
        return fn(np.asarray(power_w, dtype=float), dt_s)
    return energy_from_power


@pytest.mark.parametrize("wrong, expected", [
    (_validated(lambda p, dt: p.sum() * dt), "should be 40, got 60"),             # rectangles
    (_validated(lambda p, dt: p.mean()), "should be 40, got 20"),                 # mean power, W
    (_validated(lambda p, dt: ((p[1:] + p[:-1]) / 2).sum()), "should be 50, got 500"),  # no dt
    (lambda p, dt: float(((np.asarray(p)[1:] + np.asarray(p)[:-1]) / 2).sum() * dt),
     "dt_s=0.0) should raise ValueError"),                                       # no validation
], ids=["rectangle-sum", "mean-power", "forgot-dt", "no-validation"])
def test_q2_wrong_answers_fail(wrong, expected):
    assert_fails("q2", {"energy_from_power": wrong}, expected)


def test_q2_stub_fails_cleanly():
    assert_fails("q2", {"energy_from_power": stub}, "is None: did you return it?")


# --------------------------------------------------------------------------- q3: median latency

def test_q3_solution_passes():
    assert_passes("q3", {"median_latency_ms": SOLUTION["median_latency_ms"]})


@pytest.mark.parametrize("wrong, expected", [
    (lambda t, warmup=3: float(np.mean(np.asarray(t)[warmup:]) * 1e3), "should be 12, got 19.2"),
    (lambda t, warmup=3: float(np.median(t) * 1e3), "should be 12, got 31.5"),
    (lambda t, warmup=3: float(np.median(np.asarray(t)[warmup:])), "should be 12, got 0.012"),
    (lambda t, warmup=3: float(np.median(np.asarray(t)[warmup - 1:]) * 1e3),
     "should be 12, got 12.5"),                                                  # off by one
], ids=["mean", "kept-warmup", "seconds", "off-by-one"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # their hidden test takes a median of nothing
def test_q3_wrong_answers_fail(wrong, expected):
    assert_fails("q3", {"median_latency_ms": wrong}, expected)


def test_q3_no_error_when_nothing_left_fails_hidden_test():
    def no_check(times_s, warmup=3):
        return float(np.median(np.asarray(times_s)[warmup:]) * 1e3)  # nan + a warning, no error

    with pytest.warns(RuntimeWarning):
        results = _run("q3", {"median_latency_ms": no_check})
    assert [r.passed for r in results] == [True, False]
    assert "should raise ValueError" in results[1].message


def test_q3_stub_fails_cleanly():
    assert_fails("q3", {"median_latency_ms": stub}, "is None: did you return it?")
