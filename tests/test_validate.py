import pytest
import torch

from greenlab._internal import validate as _validate


@pytest.mark.parametrize("value, minimum, error, match", [
    (2.0, None, TypeError, "steps must be an int, got float"),
    (True, None, TypeError, "steps must be an int, got bool"),
    ("3", 1, TypeError, "steps must be an int, got str"),
    (0, 1, ValueError, "steps must be >= 1, got 0"),
])
def test_integer_names_the_argument_and_what_it_got(value, minimum, error, match):
    with pytest.raises(error, match=match):
        _validate.integer("steps", value, minimum)


def test_integer_returns_what_it_accepts():
    assert _validate.integer("steps", 5, minimum=1) == 5
    assert _validate.integer("offset", -3) == -3


def test_module_accepts_modules_and_names_the_argument_otherwise():
    layer = torch.nn.Linear(2, 2)
    assert _validate.module(layer) is layer
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module, got Tensor"):
        _validate.module(torch.zeros(2), "teacher")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got NoneType"):
        _validate.module(None)


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None])
def test_positive_refuses_all_but_ints_from_one(value):
    with pytest.raises(ValueError, match=rf"batch_size must be a positive int, got {value!r}"):
        _validate.positive("batch_size", value)
    assert _validate.positive("batch_size", 1) == 1


@pytest.mark.parametrize("value", [-1, 0.0, False])
def test_at_least_names_the_bound(value):
    with pytest.raises(ValueError, match=r"warmup must be an int >= 0, got"):
        _validate.at_least("warmup", value, 0)
    assert _validate.at_least("warmup", 0, 0) == 0
