import numpy as np
import pytest
import torch
from torch.nn.utils import prune

import greenlab as gl
from greenlab.course import checks
from greenlab.course.checks import CheckFailed


def test_check_failed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


def test_sparsity_messages():
    model = gl.models.mlp(10, (20,), 3)
    prune.l1_unstructured(model[1], "weight", amount=0.45)
    with pytest.raises(CheckFailed, match=r"expected >= 90% zeros in 1.weight, got 45.0%"):
        checks.sparsity(model, at_least=0.9, layer="1")
    assert checks.sparsity(model, at_least=0.4, layer="1") == pytest.approx(0.45)
    with pytest.raises(CheckFailed, match="too much pruned"):
        checks.sparsity(model, at_least=0.1, layer="1", at_most=0.3)
    with pytest.raises(CheckFailed, match="model has no layer 'fc9'"):
        checks.sparsity(model, at_least=0.1, layer="fc9")
    with pytest.raises(CheckFailed, match="model is None"):
        checks.sparsity(None, at_least=0.1)
    with pytest.raises(CheckFailed, match="should be a torch.nn.Module, got str"):
        checks.sparsity("model", at_least=0.1)


def test_quantized_and_params():
    model = gl.models.mlp(10, (20,), 3)
    with pytest.raises(CheckFailed, match="no quantized layer"):
        checks.quantized(model)
    q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    assert checks.quantized(q)
    assert checks.params(model, at_most=1000) == 283
    with pytest.raises(CheckFailed, match="expected at most 100 parameters, got 283"):
        checks.params(model, at_most=100)
    with pytest.raises(CheckFailed, match="at least 1,000 parameters"):
        checks.params(model, at_least=1000)


def test_accuracy_check():
    d = gl.data.load("digits")
    model = gl.models.linear(64, 10)
    with pytest.raises(CheckFailed, match=r"expected accuracy >= 90.0%, got"):
        checks.accuracy(model, d.x_test, d.y_test, at_least=0.9)
    with pytest.raises(CheckFailed, match="model is None"):
        checks.accuracy(None, d.x_test, d.y_test, 0.5)


def test_array_and_close():
    a = checks.array(torch.zeros(2, 3), shape=(2, 3), dtype=np.floating)
    assert a.shape == (2, 3)
    with pytest.raises(CheckFailed, match=r"result should have shape \(3, 2\), got \(2, 3\)"):
        checks.array(np.zeros((2, 3)), shape=(3, 2))
    with pytest.raises(CheckFailed, match="should have dtype int64, got float64"):
        checks.array(np.zeros(2), dtype=np.int64)
    with pytest.raises(CheckFailed, match="should be an array, got list"):
        checks.array([1, 2])
    with pytest.raises(CheckFailed, match="x is None"):
        checks.array(None, name="x")
    checks.close(0.1 + 0.2, 0.3)
    with pytest.raises(CheckFailed, match="kwh should be 1, got 1000"):
        checks.close(1000.0, 1.0, name="kwh")
    with pytest.raises(CheckFailed, match="2 of 3 values differ"):
        checks.close([1, 5, 6], [1, 2, 3])
    with pytest.raises(CheckFailed, match="should be a number, got str 'abc'"):
        checks.close("abc", 1.0)
    with pytest.raises(CheckFailed, match="should have shape"):
        checks.close([1, 2], [1, 2, 3])
    assert not hasattr(checks, "passed") and not hasattr(checks, "eval_mode")  # unused: removed


@pytest.mark.parametrize("value, expected, shown", [
    ("1.0", 1.0, "str '1.0'"), (True, 1, "bool True"), (np.bool_(True), 1, "bool True"),
    (b"1", 1, "bytes b'1'"), (["1.0", "2.0"], [1, 2], "list"),
    (np.array([True, False]), [1, 0], "ndarray"), (torch.tensor([True]), [1], "Tensor"),
    ([1, [2, 3]], 1, "list"), ({"a": 1}, 1, "dict"),
])
def test_close_refuses_what_only_looks_like_a_number(value, expected, shown):
    # numpy turns "1.0" into 1.0 and True into 1: "1.0" and True used to pass against 1
    with pytest.raises(CheckFailed, match=f"^answer should be a number, got {shown}"):
        checks.close(value, expected, name="answer")


def test_close_accepts_numbers_of_every_kind():
    checks.close(np.float32(0.5), 0.5)
    checks.close(np.int64(3), 3)
    checks.close(torch.tensor([1.0, 2.0]), [1, 2])
    checks.close(2, 2.0)
    with pytest.raises(TypeError, match="expected must be a number or an array of numbers, got str"):
        checks.close(1.0, "1.0")


def test_call_turns_the_learners_errors_into_failed_checks():
    assert checks.call("add(1, 2)", lambda a, b: a + b, 1, 2) == 3
    assert checks.call("f(x=2)", lambda x: x * 2, x=2, returns="the double") == 4

    def broken(t):
        raise RuntimeError("shape mismatch")

    with pytest.raises(checks.CheckFailed, match=r"^f\(t\) raised RuntimeError: shape mismatch "
                                                 r"\(use \.T\)$"):
        checks.call("f(t)", broken, 1, hint="use .T")
    with pytest.raises(checks.CheckFailed, match=r"^f\(t\) returned None: did you return the rank\?$"):
        checks.call("f(t)", lambda t: None, 1, returns="the rank")
    assert checks.call("f(t)", lambda t: None, 1) is None  # None allowed unless `returns` is given
    with pytest.raises(checks.CheckFailed, match="expected a function, got NoneType"):
        checks.call("f(t)", None, 1)
