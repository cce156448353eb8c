"""Lesson 00 exercises: the master's solutions pass every check, realistic wrong answers fail with
a message that says what is wrong, and the unfinished stub fails cleanly."""

from __future__ import annotations

from pathlib import Path

import exercise_helpers as helpers
import numpy as np
import pytest

from greenlab.course import autograder

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "00_measuring_energy.ipynb"

stub = helpers.stub
SOLUTION = helpers.master_namespace(MASTER)


def _run(question: str, answers: dict) -> list[autograder.TestResult]:
    return helpers.answers_results(MASTER, question, answers)


def assert_passes(question: str, answers: dict) -> None:
    helpers.assert_all_pass(MASTER, question, answers)


def assert_fails(question: str, answers: dict, expected: str | tuple[str, ...]) -> None:
    helpers.assert_rejects(MASTER, question, answers, expected)


def test_master_has_public_and_hidden_tests():
    helpers.assert_public_and_hidden(MASTER, ["q1", "q2", "q3", "q4"])


# --------------------------------------------------------------------------- q1: energy from power

def test_q1_solution_passes():
    assert_passes("q1", {"energy_from_power": SOLUTION["energy_from_power"]})


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
def test_q1_wrong_answers_fail(wrong, expected):
    assert_fails("q1", {"energy_from_power": wrong}, expected)


def test_q1_stub_fails_cleanly():
    assert_fails("q1", {"energy_from_power": stub}, "is None: did you return it?")


# --------------------------------------------------------------------------- q2: median latency

def test_q2_solution_passes():
    assert_passes("q2", {"median_latency_ms": SOLUTION["median_latency_ms"]})


@pytest.mark.parametrize("wrong, expected", [
    (lambda t, warmup=3: float(np.mean(np.asarray(t)[warmup:]) * 1e3), "should be 12, got 19.2"),
    (lambda t, warmup=3: float(np.median(t) * 1e3), "should be 12, got 31.5"),
    (lambda t, warmup=3: float(np.median(np.asarray(t)[warmup:])), "should be 12, got 0.012"),
    (lambda t, warmup=3: float(np.median(np.asarray(t)[warmup - 1:]) * 1e3),
     "should be 12, got 12.5"),                                                  # off by one
], ids=["mean", "kept-warmup", "seconds", "off-by-one"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # their hidden test takes a median of nothing
def test_q2_wrong_answers_fail(wrong, expected):
    assert_fails("q2", {"median_latency_ms": wrong}, expected)


def test_q2_no_error_when_nothing_left_fails_hidden_test():
    def no_check(times_s, warmup=3):
        return float(np.median(np.asarray(times_s)[warmup:]) * 1e3)  # nan + a warning, no error

    with pytest.warns(RuntimeWarning):
        results = _run("q2", {"median_latency_ms": no_check})
    assert [r.passed for r in results] == [True, False]
    assert "should raise ValueError" in results[1].message


def test_q2_stub_fails_cleanly():
    assert_fails("q2", {"median_latency_ms": stub}, "is None: did you return it?")


# --------------------------------------------------------------------------- q3: RAPL joules

def _rapl(keep=lambda name: name.startswith("package") or name == "dram",
          wrap=lambda z, diff: diff + z["max_uj"] if diff < 0 else diff, scale=1e-6):
    """A rapl_energy_j built from its three decisions: which zones, how to undo a wrap, units."""
    def rapl_energy_j(zones):
        return sum(wrap(z, z["end_uj"] - z["start_uj"]) for z in zones if keep(z["name"])) * scale
    return rapl_energy_j


def test_q3_solution_passes():
    assert_passes("q3", {"rapl_energy_j": SOLUTION["rapl_energy_j"]})


def test_q3_the_building_block_with_the_right_decisions_passes():
    assert_passes("q3", {"rapl_energy_j": _rapl()})  # so each wrong answer below differs in one


LESSON = "rapl_energy_j(the lesson's zones"


@pytest.mark.parametrize("wrong, expected", [
    (_rapl(keep=lambda n: True, wrap=lambda z, d: d), (LESSON, "should be 2.5, got -993")),
    (_rapl(keep=lambda n: True), (LESSON, "should be 2.5, got 7")),              # psys + core too
    (_rapl(keep=lambda n: n != "psys"), (LESSON, "should be 2.5, got 4")),      # core inside pkg
    (_rapl(wrap=lambda z, d: d), (LESSON, "should be 2.5, got -997.5")),         # no wrap
    (_rapl(wrap=lambda z, d: abs(d)), (LESSON, "should be 2.5, got 998.5")),     # |difference|
    (_rapl(wrap=lambda z, d: d + 2**32 if d < 0 else d), (LESSON, "got 3297.47")),  # 32-bit wrap
    (_rapl(wrap=lambda z, d: d if d >= 0 else 0), (LESSON, "should be 2.5, got 0.5")),  # dropped
    (_rapl(scale=1), ("package 10->14 J, dram 2->2.5 J) in J should be 4.5, got 4.5e+06")),
    (_rapl(scale=1e-3), ("should be 4.5, got 4500")),                             # mJ
    (_rapl(keep=lambda n: n.startswith("package")), ("should be 4.5, got 4")),   # no DRAM
], ids=["naive-sum", "all-zones", "core-counted", "no-wrap", "abs-diff", "wrap-at-2**32",
        "wrap-dropped", "microjoules", "millijoules", "no-dram"])
def test_q3_wrong_answers_fail(wrong, expected):
    assert_fails("q3", {"rapl_energy_j": wrong}, expected)


def test_q3_uncore_counted_passes_public_but_fails_hidden():
    """Skipping only the names the lesson showed (psys, core) misses uncore: the hidden test says so."""
    results = _run("q3", {"rapl_energy_j": _rapl(keep=lambda n: n not in ("psys", "core"))})
    assert [r.passed for r in results] == [True, False], [r.message for r in results]
    assert "two sockets" in results[1].message and "should be 36, got 37" in results[1].message


def test_q3_wrong_key_fails_with_the_learners_error():
    def typo(zones):
        return sum(z["end"] - z["start"] for z in zones) / 1e6

    assert_fails("q3", {"rapl_energy_j": typo}, "raised KeyError: 'end'")


def test_q3_stub_fails_cleanly():
    assert_fails("q3", {"rapl_energy_j": stub},
                 "returned None: did you return the energy in joules?")


# --------------------------------------------------------------------------- q4: measured or estimated

RIGHT = {"gl here": "estimated", "codecarbon here": "estimated", "pyJoules laptop": "measured",
         "codecarbon laptop": "mixed", "gpu server": "mixed", "smartwatts": "estimated",
         "wall meter": "measured"}


def test_q4_solution_passes():
    assert SOLUTION["labels"] == RIGHT
    assert_passes("q4", {"labels": SOLUTION["labels"]})


@pytest.mark.parametrize("changes, expected", [
    # by the tool's name: codecarbon "estimates", a power meter "measures"
    ({"codecarbon laptop": "estimated", "gpu server": "estimated", "smartwatts": "measured"},
     "3 of 7 labels are wrong: ['codecarbon laptop', 'gpu server', 'smartwatts']"),
    # a counter anywhere makes it measured
    ({"codecarbon laptop": "measured", "gpu server": "measured", "smartwatts": "measured"},
     "3 of 7 labels are wrong: ['codecarbon laptop', 'gpu server', 'smartwatts']"),
    # SmartWatts' package total is measured, so its per-container figure "is" too
    ({"smartwatts": "measured"}, "1 of 7 labels are wrong: ['smartwatts']"),
    # nothing in software is ever measured
    ({k: "estimated" for k in RIGHT},
     "4 of 7 labels are wrong: ['pyJoules laptop', 'codecarbon laptop', 'gpu server', 'wall meter']"),
    ({k: "measured" for k in RIGHT}, "labels['gl here'] is 'measured'"),
    ({"wall meter": "Measured"}, "must be 'measured', 'estimated' or 'mixed'; got {'wall meter': "
     "'Measured'}"),
    ({"gpu server": "both"}, "got {'gpu server': 'both'}"),
], ids=["by-tool", "counter-anywhere", "smartwatts-measured", "all-estimated", "all-measured",
        "capitalised", "not-a-label"])
def test_q4_wrong_answers_fail(changes, expected):
    assert_fails("q4", {"labels": {**RIGHT, **changes}}, expected)


def test_q4_missing_entry_fails():
    labels = {k: v for k, v in RIGHT.items() if k != "wall meter"}
    assert_fails("q4", {"labels": labels}, "labels has no entry for ['wall meter']")


def test_q4_not_a_dict_fails():
    assert_fails("q4", {"labels": list(RIGHT.values())}, "labels should be a dict, got list")


def test_q4_stub_fails_cleanly():
    """The learner's notebook holds ``labels[key] = ...`` until answered."""
    assert_fails("q4", {"labels": dict.fromkeys(RIGHT, ...)},
                 ("each label must be", "'gl here': Ellipsis"))
