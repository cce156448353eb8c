"""Domain checks for graded exercises: each passes silently or says exactly what is wrong.

Every check raises :class:`CheckFailed` (an ``AssertionError``, so otter-grader counts it as a
failed test) with a message a learner can act on: "expected >= 90 % zeros in fc1.weight, got 45 %".
A wrong *type* of answer (e.g. ``None`` from an unfinished stub) fails the same way, never crashes.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CheckFailed", "call", "sparsity", "quantized", "params", "accuracy", "array", "close"]


class CheckFailed(AssertionError):
    """A check did not pass; the message says what was expected and what was found."""


def _fail(message: str) -> None:
    raise CheckFailed(message)


def call(label: str, fn, *args, hint: str = "", returns: str | None = None, **kwargs):
    """``fn(*args, **kwargs)``, with the learner's exception turned into a failed check.

    ``label`` names the call in messages ("prune_layer(model, '1', 0.75) raised ValueError: ...");
    ``hint`` is appended to that message; with ``returns`` (what should come back, e.g. "the
    model"), a ``None`` result fails too: "... returned None: did you return the model?".
    """
    if not callable(fn):
        _fail(f"{label}: expected a function, got {type(fn).__name__}")
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the learner's code: any error becomes feedback, not a crash
        _fail(f"{label} raised {type(exc).__name__}: {exc}" + (f" ({hint})" if hint else ""))
    if returns is not None and result is None:
        _fail(f"{label} returned None: did you return {returns}?")
    return result


def _need_module(obj, what: str = "answer"):
    from torch import nn

    if obj is None:
        _fail(f"{what} is None: did you return/assign it? (the stub leaves it empty)")
    if not isinstance(obj, nn.Module):
        _fail(f"{what} should be a torch.nn.Module, got {type(obj).__name__}")
    return obj


def _layer(model, layer: str | None):
    if layer is None:
        return model
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        _fail(f"model has no layer {layer!r}; its layers are {names}")


def sparsity(model, at_least: float, layer: str | None = None, at_most: float = 1.0) -> float:
    """Fraction of zeros in the ``weight`` of ``layer`` (or all prunable layers) is in range."""
    from .. import profile

    _need_module(model, "model")
    target = _layer(model, layer)
    where = f"{layer}.weight" if layer else "the model's weights"
    if layer is not None:
        if getattr(target, "weight", None) is None:
            _fail(f"layer {layer!r} has no weight")
        w = target.weight.detach()
        value = float((w == 0).sum()) / w.numel()
    else:
        value = profile.sparsity(target)
    if value < at_least - 1e-9:
        _fail(f"expected >= {at_least:.0%} zeros in {where}, got {value:.1%}")
    if value > at_most + 1e-9:
        _fail(f"expected <= {at_most:.0%} zeros in {where}, got {value:.1%} (too much pruned?)")
    return value


def quantized(model) -> list[str]:
    """At least one layer holds int8 weights (``torch.ao`` quantized modules or quantized tensors)."""
    _need_module(model, "model")
    found = []
    for name, m in model.named_modules():
        kind = type(m).__module__
        if ".quantized" in kind and hasattr(m, "weight"):
            found.append(name)
    if not found:
        for name, t in model.state_dict().items():
            if hasattr(t, "is_quantized") and t.is_quantized:
                found.append(name)
    if not found:
        _fail("no quantized layer found: did you call convert() after prepare() and calibration?")
    return found


def params(model, at_most: int | None = None, at_least: int | None = None) -> int:
    """The parameter count lies within bounds."""
    from .. import profile

    _need_module(model, "model")
    n = profile.count_params(model)
    if at_most is not None and n > at_most:
        _fail(f"expected at most {at_most:,} parameters, got {n:,}")
    if at_least is not None and n < at_least:
        _fail(f"expected at least {at_least:,} parameters, got {n:,}")
    return n


def accuracy(model, x, y, at_least: float) -> float:
    """Test accuracy on ``(x, y)`` is at least ``at_least`` (a fraction)."""
    from ..train import evaluate

    if model is None:
        _fail("model is None: did you return/assign it?")
    value = evaluate(model, x, y)["accuracy"]
    if value < at_least:
        _fail(f"expected accuracy >= {at_least:.1%}, got {value:.1%}")
    return value


def array(value, shape: tuple | None = None, dtype=None, name: str = "result") -> np.ndarray:
    """``value`` is an array (numpy or torch) of the given shape and dtype kind."""
    if value is None:
        _fail(f"{name} is None: did you return it?")
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        _fail(f"{name} should be an array, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        _fail(f"{name} should have shape {tuple(shape)}, got {tuple(value.shape)}")
    if dtype is not None and not np.issubdtype(value.dtype, dtype):
        _fail(f"{name} should have dtype {np.dtype(dtype).name}, got {value.dtype}")
    return value


def _numbers(value):
    """``value`` as a numpy array if it holds real numbers (ints or floats), else None: a string
    ("1.0"), a bool (True == 1) or an array of them is not a number, though numpy would convert it."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, bool, np.bool_)):
        return None
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists
        return None
    return raw.astype(float) if raw.dtype.kind in "iuf" else None


def close(value, expected, rtol: float = 1e-5, atol: float = 1e-8, name: str = "result") -> None:
    """``value`` equals ``expected`` within tolerance (real numbers or arrays of them; a string or a
    bool fails, even "1.0" or True against 1)."""
    if value is None:
        _fail(f"{name} is None: did you return it?")
    b = _numbers(expected)
    if b is None:
        raise TypeError(f"expected must be a number or an array of numbers, got {type(expected).__name__}")
    a = _numbers(value)
    if a is None:
        kind = "bool" if isinstance(value, np.bool_) else type(value).__name__
        shown = value if isinstance(value, (str, bytes)) else bool(value) if kind == "bool" else None
        _fail(f"{name} should be a number, got {kind}" + (f" {shown!r}"[:60] if shown is not None else ""))
    if a.shape != b.shape:
        _fail(f"{name} should have shape {b.shape}, got {a.shape}")
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        if a.size == 1:
            _fail(f"{name} should be {b.item():.6g}, got {a.item():.6g}")
        bad = int((~np.isclose(a, b, rtol=rtol, atol=atol)).sum())
        worst = float(np.max(np.abs(a - b)))
        _fail(f"{name}: {bad} of {a.size} values differ from the expected ones (max |diff| {worst:.3g})")
    if a.size == 1 and not math.isfinite(a.item()):
        _fail(f"{name} is not finite: {a.item()}")

