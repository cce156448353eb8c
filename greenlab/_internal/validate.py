"""Argument checks shared by greenlab's modules: one wording for the same mistake everywhere.

Each returns the value it checked, so a call reads ``steps = integer("steps", steps, minimum=1)``.
Kept free of heavy imports (``greenlab.env`` must work where torch is missing).
"""

from __future__ import annotations


def integer(name: str, value, minimum: int | None = None) -> int:
    """``value`` as an int (bool refused): TypeError if not an int, ValueError if below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def module(value, name: str = "model"):
    """``value`` if it is a ``torch.nn.Module``, else TypeError naming ``name`` and what it got."""
    from torch import nn

    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def at_least(name: str, value, low: int) -> int:
    """An int ``>= low`` (bool refused), else ValueError: "name must be an int >= low, got v"."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def positive(name: str, value) -> int:
    """An int ``>= 1`` (bool refused), else ValueError: "name must be a positive int, got v"."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def float_tensor(x, name: str, dtype=None):
    """``x`` (a number, numpy array or torch tensor; bool refused) as a detached float32 tensor."""
    import numpy as np
    import torch

    dtype = torch.float32 if dtype is None else dtype
    if isinstance(x, (int, float, np.ndarray, np.generic)) and not isinstance(x, bool):
        return torch.as_tensor(x, dtype=dtype)
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype)
    raise TypeError(f"{name} must be a number, numpy array or torch tensor, got {type(x).__name__}")
