"""Lesson 03 exercises: each solution passes its tests, and realistic wrong answers are rejected
with a message that says what is wrong."""

from __future__ import annotations

import copy
from pathlib import Path

import exercise_helpers as helpers
import numpy as np
import pytest
import torch

import greenlab as gl

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "03_quantization.ipynb"


def master_solution(name: str):
    """The function ``name`` as the master's solution cell defines it."""
    return helpers.master_solution(MASTER, name, {"copy": copy, "np": np, "torch": torch, "gl": gl})


def assert_passes(question: str, name: str, answer) -> None:
    helpers.assert_passes(MASTER, question, name, answer)


def assert_rejected(question: str, name: str, answer, *fragments: str) -> None:
    """The *first* failing test fails cleanly, with every fragment in its message."""
    results = helpers.answers_results(MASTER, question, {name: answer})
    failed = [r for r in results if not r.passed]
    assert failed, f"{question}: a wrong answer passed"
    message = failed[0].message
    assert message.startswith("CheckFailed"), message  # a check's message, not a crash
    for fragment in fragments:
        assert fragment in message, message


# ----------------------------------------------------------------------------- q1 affine_params


def affine_params(x_min, x_max, qmin, qmax):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, qmin - round(x_min / scale)


def affine_no_zero(x_min, x_max, qmin, qmax):  # forgets to include 0 in the range
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, qmin - round(x_min / scale)


def affine_truncates(x_min, x_max, qmin, qmax):  # int() instead of round()
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, qmin - int(x_min / scale)


def affine_swapped_scale(x_min, x_max, qmin, qmax):  # qmin and qmax swapped in the scale
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (qmin - qmax)
    return scale, qmin - round(x_min / scale)


def affine_swapped_zero(x_min, x_max, qmin, qmax):  # qmax where qmin belongs in the zero point
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (qmax - qmin)
    return scale, qmax - round(x_min / scale)


def test_q1_solution_passes():
    assert_passes("q1", "affine_params", affine_params)


@pytest.mark.parametrize("wrong,fragments", [
    (affine_no_zero, ("scale of affine_params(0.5, 4.0, 0, 255)", "include 0")),
    (affine_truncates, ("zero_point of affine_params(-1.0, 3.0, 0, 255) should be 64, got 63",
                        "round x_min / scale")),
    (affine_swapped_scale, ("must be > 0", "swap qmin and qmax")),
    (affine_swapped_zero, ("must lie in [0, 255], got 319",)),
    (lambda x_min, x_max, qmin, qmax: None, ("should return (scale, zero_point), got None",)),
    (lambda x_min, x_max, qmin, qmax: (None, None), ("fill in both values",)),
])
def test_q1_rejects(wrong, fragments):
    assert_rejected("q1", "affine_params", wrong, *fragments)


# ----------------------------------------------------------------------------- q2 quantize


def quantize(x, scale, zero_point, qmin, qmax):
    return np.clip(np.round(np.asarray(x) / scale) + zero_point, qmin, qmax).astype(np.int32)


def test_q2_solution_passes():
    assert_passes("q2", "quantize", quantize)
    # a torch answer is fine too
    assert_passes("q2", "quantize", lambda x, s, z, lo, hi: torch.clamp(
        torch.round(torch.as_tensor(x) / s) + z, lo, hi).to(torch.int64))


@pytest.mark.parametrize("wrong,fragments", [
    (lambda x, s, z, lo, hi: (np.round(x / s) + z).astype(np.int32),          # no clamp
     ("values must lie in [0, 255]", "np.clip")),
    (lambda x, s, z, lo, hi: np.clip(np.floor(x / s) + z, lo, hi).astype(np.int32),  # floor
     ("integers differ from torch.quantize_per_tensor",)),
    (lambda x, s, z, lo, hi: np.clip(np.round(x / s), lo, hi).astype(np.int32),  # no zero point
     ("integers differ", "add the zero point")),
    (lambda x, s, z, lo, hi: np.clip(np.round(x / s) + z, lo, hi),            # floats, not ints
     ("should return integers, got dtype float", "astype(np.int32)")),
    (lambda x, s, z, lo, hi: None, ("is None",)),
])
def test_q2_rejects(wrong, fragments):
    assert_rejected("q2", "quantize", wrong, *fragments)


# ----------------------------------------------------------------------------- q3 int8_size_ratio


def int8_size_ratio(n_weights, n_biases, overhead_bytes):
    return (4 * (n_weights + n_biases) + overhead_bytes) / (n_weights + 4 * n_biases + overhead_bytes)


def test_q3_solution_passes():
    assert_passes("q3", "int8_size_ratio", int8_size_ratio)


@pytest.mark.parametrize("wrong,fragments", [
    (lambda w, b, o: 4 * (w + b) / (w + 4 * b), ("does not shrink", "should be 2.81818, got 4")),
    (lambda w, b, o: (4 * (w + b) + o) / (w + b + o), ("biases stay 4 bytes", "got 4")),
    (lambda w, b, o: (w + 4 * b + o) / (4 * (w + b) + o), ("should be 4, got 0.25",)),
    (lambda w, b, o: None, ("is None",)),
])
def test_q3_rejects(wrong, fragments):
    assert_rejected("q3", "int8_size_ratio", wrong, *fragments)


# ----------------------------------------------------------------------------- q4 ptq_int8


def _prepared(model, calib_x):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    return prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"),
                      example_inputs=(calib_x[:1],))


def ptq_int8(model, calib_x):
    from torch.ao.quantization.quantize_fx import convert_fx

    prepared = _prepared(model, calib_x)
    with torch.no_grad():
        prepared(calib_x)
    return convert_fx(prepared)


def ptq_uncalibrated(model, calib_x):
    from torch.ao.quantization.quantize_fx import convert_fx

    return convert_fx(_prepared(model, calib_x))


def ptq_not_converted(model, calib_x):
    prepared = _prepared(model, calib_x)
    with torch.no_grad():
        prepared(calib_x)
    return prepared


def ptq_dynamic(model, calib_x):
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


@pytest.fixture
def no_deterministic_mode():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before)


def test_q4_solution_passes(no_deterministic_mode):
    assert_passes("q4", "ptq_int8", ptq_int8)


@pytest.mark.parametrize("wrong,fragments", [
    (ptq_uncalibrated, ("off by up to", "did you run calib_x through the prepared model")),
    (ptq_not_converted, ("no quantized layer found", "convert()")),
    (ptq_dynamic, ("dynamically quantized", "prepare_fx, calibrate, convert_fx")),
    (lambda model, calib_x: None, ("model is None",)),
])
def test_q4_rejects(wrong, fragments, no_deterministic_mode):
    assert_rejected("q4", "ptq_int8", wrong, *fragments)


def test_every_question_is_tested_here():
    assert sorted(gl.course.autograder.question_tests(MASTER)) == ["q1", "q2", "q3", "q4"]


@pytest.mark.parametrize("question,name", [("q1", "affine_params"), ("q2", "quantize"),
                                           ("q3", "int8_size_ratio"), ("q4", "ptq_int8")])
def test_master_solutions_pass(question, name, no_deterministic_mode):
    assert_passes(question, name, master_solution(name))
