"""What a model costs: parameters, non-zeros, bytes, FLOPs and latency.

Works for torch modules, scikit-learn estimators (size via pickle) and runtime sessions such as
:class:`greenlab.runtimes.OrtClassifier` (size: their ``size_bytes``).
"""

from __future__ import annotations

import io
import pickle
import re
import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ._internal.validate import at_least, integer
from ._internal.validate import module as _module

__all__ = ["count_params", "count_nonzero", "sparsity", "size_bytes", "compressed_size_bytes",
           "flops", "latency", "Latency", "unmasked_state"]


# a quantization scale or zero point: a layer's "scale", or FX's "_input_scale_0" / "0_scale_0"
_QPARAM = re.compile(r"scale|zero_point|.*_(scale|zero_point)_\d+")


def unmasked_state(model: nn.Module) -> dict:
    """``model.state_dict()`` with pruning masks applied: ``torch.nn.utils.prune`` keeps
    ``weight_orig`` and ``weight_mask``; here they are one ``weight``, as after ``prune.remove``.
    The model is not changed."""
    state = _module(model).state_dict()
    out = {}
    for name, t in state.items():
        if name.endswith("_mask"):
            continue
        if name.endswith("_orig"):
            name = name[: -len("_orig")]
            mask = state.get(name + "_mask")
            t = t * mask if mask is not None else t
        out[name] = t
    return out


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Named weights as the model would be saved, as float tensors: pruning masks applied,
    int8 weights dequantized (packed ``torch.ao`` params unpacked, torchao tensors too), buffers
    excluded."""
    out = {}
    for name, t in unmasked_state(model).items():
        items = [(name, t)]
        if isinstance(t, tuple):  # quantized Linear: _packed_params = (int8 weight, float bias)
            items = [(f"{name}.{i}", x) for i, x in enumerate(t)]
        for key, x in items:
            if not torch.is_tensor(x) or not (x.is_floating_point() or x.is_quantized):
                continue  # step counters, scales and zero points kept as ints
            if key.split(".")[-1].startswith("running_") or _QPARAM.fullmatch(key.split(".")[-1]):
                continue  # batch-norm statistics and quantization parameters are not weights
            if x.is_quantized or hasattr(x, "qdata"):  # torch.ao int8, or a torchao int8 tensor
                x = x.dequantize()
            out[key] = x
    return out


def count_params(model) -> int:
    """Number of stored weights of a torch module: every parameter, frozen (``requires_grad=False``)
    or not, and int8 weights (``torch.ao``, torchao) counted like the float ones they replace.

    Pruned weights still count (they are stored, as zeros); pruning masks, batch-norm statistics
    and quantization scales / zero points do not.
    """
    if hasattr(model, "get_params") and not isinstance(model, nn.Module):
        raise TypeError("count_params needs a torch module; for scikit-learn use size_bytes")
    return int(sum(t.numel() for t in _tensors(_module(model)).values()))


def count_nonzero(model) -> int:
    """Weights that are not exactly zero (after pruning masks are applied)."""
    return int(sum(int(torch.count_nonzero(t)) for t in _tensors(_module(model)).values()))


def sparsity(model, module_types: tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)) -> float:
    """Fraction of zeros among the ``weight`` tensors of ``module_types`` layers (0-1)."""
    _module(model)
    zeros = total = 0
    for m in model.modules():
        if isinstance(m, module_types) and hasattr(m, "weight"):
            w = m.weight.detach()
            zeros += int((w == 0).sum())
            total += w.numel()
    if total == 0:
        raise ValueError(f"model has no layers of types {[t.__name__ for t in module_types]}")
    return zeros / total


def _serialize(model) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ValueError(f"model path {str(path)!r} is not a file")
        return path.read_bytes()
    if isinstance(model, nn.Module):
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        return buf.getvalue()
    if hasattr(model, "predict"):
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    raise TypeError(
        "model must be a torch module, a scikit-learn estimator, a runtime session, bytes or a file "
        f"path, got {type(model).__name__}"
    )


def _session_size(model) -> int | None:
    """A runtime session's stored size (``OrtClassifier``, ``TFLiteClassifier``: ``size_bytes``)."""
    if isinstance(model, nn.Module) or not callable(getattr(model, "logits", None)):
        return None
    size = getattr(model, "size_bytes", None)
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def size_bytes(model) -> int:
    """Serialized size: ``torch.save(state_dict)``, pickle for scikit-learn, a runtime session's
    model file or flatbuffer (its ``size_bytes``), or a file's size."""
    size = _session_size(model)
    return size if size is not None else len(_serialize(model))


def compressed_size_bytes(model, level: int = 9) -> int:
    """Size after zlib compression: what pruning's zeros save on disk or over the network."""
    level = integer("level", level, 0, 9)
    return len(zlib.compress(_serialize(model), level))


def flops(model: nn.Module, example: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on ``example`` (``torch.utils.flop_counter``).

    A multiply-add counts as 2 FLOPs. Pruned (zeroed) weights still count: dense kernels run them.
    """
    from torch.utils.flop_counter import FlopCounterMode

    _module(model)
    if not torch.is_tensor(example):
        raise TypeError(f"example must be a torch tensor, got {type(example).__name__}")
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    model.train(was_training)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class Latency:
    """Wall-clock latency of repeated calls, after warm-up."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int

    @property
    def spread_ms(self) -> float:
        return self.p90_ms - self.p10_ms

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10-p90 {self.p10_ms:.3f}-{self.p90_ms:.3f}, n={self.repeats})"


def latency(fn: Callable[[], object], warmup: int = 3, repeats: int = 20) -> Latency:
    """Time ``fn()`` ``repeats`` times after ``warmup`` calls; median and 10th/90th percentiles.

    Synchronizes CUDA around each call so GPU work is timed, not just queued.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable (e.g. lambda: model(x)), got {type(fn).__name__}")
    warmup, repeats = at_least("warmup", warmup, 0), at_least("repeats", repeats, 1)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    q = statistics.quantiles(times, n=10, method="inclusive") if repeats > 1 else [times[0]] * 9
    return Latency(statistics.median(times), q[0], q[-1], repeats)

