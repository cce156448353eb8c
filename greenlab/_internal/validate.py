"""Argument checks for greenlab's public functions: one wording for the same mistake everywhere.

A wrong type raises TypeError, a wrong value ValueError; both name the argument and what was
expected ("sparsity must be a number in [0, 1], got 1.5", "steps must be an int, got str"). Each
returns the value it checked as a plain Python ``int`` / ``float`` / ``bool``, so numpy scalars
(``np.int64(8)``, ``np.float32(0.9)``) are accepted; a bool is never a number here. A call reads
``steps = positive("steps", steps)``. Kept free of heavy imports at module level (``greenlab.env``
must work where numpy or torch is missing).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator


def _type(value) -> str:
    return type(value).__name__


def _is_bool(value) -> bool:
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and _type(value) == "bool")


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (numpy ints too, bool refused): TypeError if not an int, ValueError
    outside ``[minimum, maximum]``."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_type(value)}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an int in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def at_least(name: str, value, low: int) -> int:
    """An int ``>= low`` (numpy ints too, bool refused): "name must be an int >= low, got v"."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {_type(value)}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {int(value)}")
    return int(value)


def positive(name: str, value) -> int:
    """An int ``>= 1`` (numpy ints too, bool refused): "name must be a positive int, got v"."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {_type(value)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {int(value)}")
    return int(value)


def number(name: str, value, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """A finite real number (numpy floats and ints too, bool refused) as a float, optionally in an
    interval: ``number("sparsity", s, 0, 1)`` -> "sparsity must be a number in [0, 1], got 1.5".

    ``low_open`` / ``high_open`` exclude the bound; ``hint`` is added to the ValueError message.
    """
    where = ""
    if low is not None and high is not None:
        where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        where = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        where = f" {'<' if high_open else '<='} {high:g}"
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number{where}, got {_type(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{where}, got {value}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise ValueError(f"{name} must be a number{where}{hint}, got {value:g}")
    return value


def fraction(name: str, value, *, low_open: bool = False, high_open: bool = False) -> float:
    """A number in [0, 1] (bounds optionally open); a percentage (1 < v <= 100) gets a hint."""
    hint = ""
    if isinstance(value, numbers.Integral) and not _is_bool(value) and 1 < value <= 100:
        hint = f" (a fraction: {float(value) / 100:g} for {float(value):g} %)"
    return number(name, value, 0, 1, low_open=low_open, high_open=high_open, hint=hint)


def boolean(name: str, value) -> bool:
    """``value`` if it is True or False (a numpy bool too): TypeError for a string such as "no"."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {_type(value)} {value!r:.40}")
    return bool(value)


def function(name: str, value, optional: bool = True):
    """``value`` if it is callable (or None when ``optional``), else TypeError."""
    if (value is None and optional) or callable(value):
        return value
    raise TypeError(f"{name} must be a function{' or None' if optional else ''}, got {_type(value)}")


def module(value, name: str = "model"):
    """``value`` if it is a ``torch.nn.Module``, else TypeError naming ``name`` and what it got."""
    from torch import nn

    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {_type(value)}")
    return value


def float_tensor(x, name: str, dtype=None, finite: bool = False):
    """``x`` (a number, numpy array or torch tensor; bool refused) as a detached tensor of
    ``dtype`` (float32); ``finite=True`` refuses NaN and inf values with a ValueError."""
    import numpy as np
    import torch

    dtype = torch.float32 if dtype is None else dtype
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, (numbers.Real, np.ndarray, np.generic)) and not _is_bool(x):
        if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got a numpy array of dtype {x.dtype}")
        t = torch.as_tensor(x)
    else:
        raise TypeError(f"{name} must be a number, numpy array or torch tensor, got {_type(x)}")
    if finite:
        finite_values(name, t)
    return t.to(dtype)


def finite_values(name: str, t) -> None:
    """ValueError if the tensor ``t`` holds NaN or inf (say how many, so the learner can look)."""
    import torch

    if t.is_floating_point() or t.is_complex():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise ValueError(f"{name} must hold finite numbers, got {bad} NaN or inf value"
                             f"{'s' if bad > 1 else ''} of {t.numel()}")


def integral_values(name: str, t) -> None:
    """ValueError if the tensor ``t`` holds values that are not whole numbers (or NaN / inf)."""
    finite_values(name, t)
    if t.is_floating_point() and bool((t != t.round()).any()):
        example = float(t[t != t.round()].flatten()[0])
        raise ValueError(f"{name} must hold whole numbers (class indices, integer codes), got "
                         f"{example:g} among them")


@contextlib.contextmanager
def explains_width(model, x, name: str = "x") -> Iterator[None]:
    """Inside the block, torch's shape errors from running ``model`` on the tensor ``x`` ("mat1 and
    mat2 shapes cannot be multiplied") become a ValueError that says how many features ``x`` has
    per sample and how many the model expects."""
    try:
        yield
    except RuntimeError as exc:
        if not any(s in str(exc) for s in ("shape", "size", "Expected", "expected")):
            raise
        width = math.prod(x.shape[1:]) if x.dim() > 1 else 1
        expected = expected_width(model)
        wants = (f"the model expects {expected}" if expected is not None
                 else f"the model does not accept that ({exc})")
        raise ValueError(f"{name} has {width} features per sample (shape "
                         f"{tuple(x.shape[1:])}), {wants}") from None


def input_fits(model, x, name: str = "x"):
    """``model``'s output on the first sample of the tensor ``x`` (eval mode, no gradients; the mode
    is restored), a wrong input width raised as :func:`explains_width` says."""
    import torch

    was_training = model.training
    model.eval()
    try:
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad(), explains_width(model, x, name):
            return model(x[:1].to(dev))
    finally:
        model.train(was_training)


def expected_width(model) -> int | None:
    """The input features per sample a model reads, where it says: its ``in_features`` /
    ``length`` attribute, or its first layer's when that is a ``Linear``."""
    from torch import nn

    for attr in ("length", "in_features"):
        value = getattr(model, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))),
                 None)
    return first.in_features if isinstance(first, nn.Linear) else None
