"""Quantization: the affine int8 maths, and the real libraries that do it (torch.ao, ONNX Runtime, TFLite).

* Teaching versions: :func:`affine_params`, :func:`quantize`, :func:`dequantize`, :func:`fake_quantize`,
  checked bit for bit against ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel``.
* PyTorch (``torch.ao.quantization``, FX graph mode, x86 backend): :func:`dynamic_int8`,
  :func:`static_int8_fx`, :func:`prepare_qat_fx` / :func:`convert_fx`, :func:`weight_bytes`;
  its successor torchao: :func:`torchao_int8`.
* ONNX Runtime and TFLite (int8 in other runtimes) live in :mod:`greenlab.runtimes`.
* ``greenlab.summarize`` / ``greenlab.compare`` measure any of these side by side.

Every converter returns a quantized copy and leaves the model it is given as it was; each sets
``torch.backends.quantized.engine`` to ``"x86"`` for its own work and restores the previous engine
before it returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .._internal.quiet import loggers
from .._internal.validate import boolean, float_tensor, integer, integral_values, positive
from .._internal.validate import module as _check_module
from ..models import clone

__all__ = [
    "affine_params", "quantize", "dequantize", "fake_quantize", "int_range",
    "weight_bytes", "qconfig_mapping", "dynamic_int8", "static_int8_fx", "prepare_qat_fx",
    "convert_fx", "import_torchao", "torchao_int8",
]

_EPS = torch.finfo(torch.float32).eps  # torch's observers never return a scale below this


# ----------------------------------------------------------------------------- teaching maths


def int_range(bits: int = 8, signed: bool = True) -> tuple[int, int]:
    """``(qmin, qmax)`` of a ``bits``-bit integer: ``(-128, 127)`` signed, ``(0, 255)`` unsigned."""
    bits, signed = integer("bits", bits, 2, 16), boolean("signed", signed)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _check_q(qmin: int, qmax: int) -> tuple[int, int]:
    qmin, qmax = integer("qmin", qmin), integer("qmax", qmax)
    if not qmin < qmax:
        raise ValueError(f"qmin must be < qmax, got qmin={qmin}, qmax={qmax}")
    return qmin, qmax




def _along(t: torch.Tensor, ndim: int, axis: int | None) -> torch.Tensor:
    """Reshape per-channel parameters ``t`` to broadcast along ``axis`` of an ``ndim`` tensor."""
    if axis is None:
        if t.numel() != 1:
            raise ValueError(f"per-tensor parameters must be scalars (or pass axis=), got shape "
                             f"{tuple(t.shape)}")
        return t.reshape(())
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [{-ndim}, {ndim - 1}], got {axis}")
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def _scale_zero(scale, zero_point, ndim: int, axis) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked quantization parameters, shaped to broadcast along ``axis``: finite scales > 0,
    whole-number zero points."""
    if axis is not None:
        axis = integer("axis", axis)
    s = _along(float_tensor(scale, "scale", finite=True), ndim, axis)
    if bool((s <= 0).any()):
        raise ValueError("scale must be > 0")
    z = float_tensor(zero_point, "zero_point", torch.float64)
    integral_values("zero_point", z)
    return s, _along(z.to(torch.int64), ndim, axis)


def affine_params(x_min, x_max, qmin: int = -128, qmax: int = 127,
                  symmetric: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point that map ``[x_min, x_max]`` onto the integers ``[qmin, qmax]``.

    The range is first widened to include 0, so that 0.0 (padding, ReLU zeros) is exactly
    representable. Affine: ``scale = (max - min) / (qmax - qmin)``, ``zero_point = qmin -
    round(min / scale)``. Symmetric: ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)`` and the
    zero point is 0 (or the middle of an unsigned range). Same arithmetic as torch's
    ``MinMaxObserver``, so per-channel ``x_min`` / ``x_max`` (1-D) work too.

    Returns:
        ``(scale, zero_point)`` as float32 / int64 tensors (0-d for scalar inputs).
    """
    qmin, qmax = _check_q(qmin, qmax)
    symmetric = boolean("symmetric", symmetric)
    lo, hi = float_tensor(x_min, "x_min", finite=True), float_tensor(x_max, "x_max", finite=True)
    if lo.shape != hi.shape:
        raise ValueError(f"x_min and x_max must have the same shape, got {tuple(lo.shape)} and "
                         f"{tuple(hi.shape)}")
    if bool((lo > hi).any()):
        raise ValueError("x_min must be <= x_max (did you swap them?)")
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)  # include 0 in the range
    if symmetric:
        scale = torch.maximum(-lo, hi) / (float(qmax - qmin) / 2)
        scale = torch.clamp(scale, min=_EPS)
        middle = 0 if qmin < 0 else (qmin + qmax + 1) // 2
        zero_point = torch.full_like(scale, middle, dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / float(qmax - qmin), min=_EPS)
        zero_point = torch.clamp(qmin - torch.round(lo / scale).to(torch.int64), qmin, qmax)
    return scale, zero_point


def quantize(x, scale, zero_point, qmin: int = -128, qmax: int = 127,
             axis: int | None = None) -> torch.Tensor:
    """Floats to integers: ``q = clamp(round(x / scale + zero_point), qmin, qmax)``.

    Rounds half to even and computes ``x * (1/scale) + zero_point`` with one rounding to float32,
    as torch's fbgemm kernel does, so the integers equal ``torch.quantize_per_tensor(...).int_repr()``
    bit for bit (with ``axis``, ``torch.quantize_per_channel`` for symmetric zero points).

    Args:
        x: values (numpy or torch).
        scale, zero_point: scalars, or 1-D with one entry per channel along ``axis``.
        qmin, qmax: the integer range, e.g. ``(-128, 127)`` for int8.
        axis: the channel axis for per-channel quantization; ``None`` for per-tensor.
    Returns:
        An int32 tensor of the same shape as ``x``. NaN / inf in ``x`` or ``scale``, a scale <= 0
        and a zero point outside ``[qmin, qmax]`` are refused (ValueError).
    """
    qmin, qmax = _check_q(qmin, qmax)
    xt = float_tensor(x, "x", finite=True)  # NaN would become -2**31, outside [qmin, qmax]
    s, z = _scale_zero(scale, zero_point, xt.dim(), axis)
    if bool(((z < qmin) | (z > qmax)).any()):
        raise ValueError(f"zero_point must be in [qmin, qmax] = [{qmin}, {qmax}]")
    inv_scale = 1.0 / s  # float32, like the kernels
    t = (xt.double() * inv_scale.double() + z.double()).float()  # one rounding, like an FMA
    return torch.clamp(torch.round(t), qmin, qmax).to(torch.int32)


def dequantize(q, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """Integers back to floats: ``x ≈ (q - zero_point) * scale`` (float32)."""
    qt = float_tensor(q, "q", torch.float64)
    integral_values("q", qt)
    qt = qt.to(torch.int64)
    s, z = _scale_zero(scale, zero_point, qt.dim(), axis)
    return (qt - z).to(torch.float32) * s


def fake_quantize(x, bits: int = 8, per_channel: bool = False, axis: int = 0,
                  symmetric: bool = True) -> torch.Tensor:
    """``dequantize(quantize(x))`` with min/max ranges: the float values ``bits``-bit integers can hold.

    Per-channel takes one range per slice along ``axis`` (output channels of a weight).
    """
    xt = float_tensor(x, "x", finite=True)
    qmin, qmax = int_range(bits, signed=True)
    per_channel, symmetric = boolean("per_channel", per_channel), boolean("symmetric", symmetric)
    if xt.numel() == 0:
        raise ValueError("x must hold at least one value")
    if per_channel:
        if xt.dim() < 1:
            raise ValueError("per_channel needs x with at least one dimension")
        axis = integer("axis", axis, -xt.dim(), xt.dim() - 1)
        flat = xt.movedim(axis, 0).reshape(xt.shape[axis], -1)
        scale, zp = affine_params(flat.min(1).values, flat.max(1).values, qmin, qmax, symmetric)
        return dequantize(quantize(xt, scale, zp, qmin, qmax, axis), scale, zp, axis)
    scale, zp = affine_params(xt.min(), xt.max(), qmin, qmax, symmetric)
    return dequantize(quantize(xt, scale, zp, qmin, qmax), scale, zp)


# ----------------------------------------------------------------------------- PyTorch (torch.ao)


def weight_bytes(model) -> int:
    """Bytes held by the ``weight`` tensors of a model (int8 weights: 1 byte each, fp32: 4).

    Reads quantized modules too (their ``weight()`` is a method). Biases, scales and zero points are
    left out: this is the "4x smaller weights" of int8, before any file-format overhead.
    """
    total = 0
    for m in _check_module(model).modules():
        w = getattr(m, "weight", None)
        if callable(w) and not isinstance(w, torch.Tensor):
            try:
                w = w()
            except Exception:  # noqa: BLE001 -- a module whose weight() needs arguments
                continue
        data = getattr(w, "qdata", None)  # a torchao int8 tensor keeps its integers in .qdata
        if isinstance(data, torch.Tensor):
            w = data
        if isinstance(w, torch.Tensor):
            total += w.numel() * w.element_size()
    return total


def import_torchao():
    """``torchao``, imported without its start-up log lines (on a CPU-only machine it reports its
    CUDA kernels as failing to load, which is expected and harmless)."""
    try:
        with loggers("torchao", "torch.utils._pytree"):
            import torchao
    except ImportError as exc:
        raise ImportError(f"torchao does not import here ({exc}). Fix: pip install 'torchao>=0.14'"
                          ) from None
    return torchao


def torchao_int8(model: nn.Module, weight_only: bool = False) -> nn.Module:
    """int8 with torchao (``quantize_``), torch.ao's successor: int8 weights with activations
    quantized per batch (``Int8DynamicActivationInt8WeightConfig``), or int8 weights only
    (``Int8WeightOnlyConfig``). torchao's default filter targets ``nn.Linear`` layers: convolutions
    stay float32. Returns a quantized copy on the CPU; ``model`` is left as it was."""
    import_torchao()
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    m = clone(_check_module(model)).cpu().eval()
    quantize_(m, Int8WeightOnlyConfig() if weight_only else Int8DynamicActivationInt8WeightConfig())
    return m


def qconfig_mapping(per_channel: bool = True, weight_bits: int = 8, qat: bool = False):
    """A ``QConfigMapping`` for the x86 backend: uint8 activations, signed symmetric weights.

    Args:
        per_channel: one weight scale per output channel (the x86 default) or one per tensor.
        weight_bits: 8 for int8; fewer (e.g. 4) keeps int8 storage but only ``2**bits`` levels,
            to show what a harder setting does to accuracy.
        qat: fake-quantize modules for quantization-aware training instead of observers.
    """
    from torch.ao import quantization as tq

    weight_bits = integer("weight_bits", weight_bits, 2, 8)
    per_channel, qat = boolean("per_channel", per_channel), boolean("qat", qat)
    base = tq.get_default_qat_qconfig("x86") if qat else tq.get_default_qconfig("x86")
    qmin, qmax = int_range(weight_bits)
    scheme = torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric
    observer = (tq.MovingAveragePerChannelMinMaxObserver if qat else tq.PerChannelMinMaxObserver) \
        if per_channel else (tq.MovingAverageMinMaxObserver if qat else tq.MinMaxObserver)
    kwargs = dict(dtype=torch.qint8, qscheme=scheme, quant_min=qmin, quant_max=qmax)
    weight = (tq.FakeQuantize.with_args(observer=observer, **kwargs) if qat
              else observer.with_args(**kwargs))
    return tq.QConfigMapping().set_global(tq.QConfig(activation=base.activation, weight=weight))


@contextmanager
def _x86_engine() -> Iterator[None]:
    """``torch.backends.quantized.engine = "x86"`` for one conversion, the caller's engine after.

    The x86 engine packs int8 weights for fbgemm-style kernels; run the result under the x86 (or
    fbgemm) engine, the default on x86 CPUs."""
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


@contextmanager
def _quiet_ao() -> Iterator[None]:
    """torch.ao.quantization warns on every call that it is deprecated in favour of torchao
    (measured beside it in lesson 03); the lesson says so once instead."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        yield


def _batches(x, batch_size: int) -> Iterator[torch.Tensor]:
    positive("batch_size", batch_size)
    xt = float_tensor(x, "calib_x", finite=True)
    if xt.dim() < 1 or len(xt) == 0:
        raise ValueError("calib_x must hold at least one sample")
    for i in range(0, len(xt), batch_size):
        yield xt[i:i + batch_size]


def _fusable(model: nn.Module) -> nn.Module:
    """A traced copy where ``torch.relu(x)`` calls read ``F.relu(x)``: the backend's fusion patterns
    name ``F.relu`` and ``nn.ReLU`` only, so a ``torch.relu`` after a conv would stay a float op
    wrapped in dequantize / quantize instead of fusing into one int8 conv+relu kernel."""
    gm = torch.fx.symbolic_trace(clone(model))
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in (torch.relu, torch.relu_):
            node.target = nn.functional.relu
    gm.recompile()
    return gm


def dynamic_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 (``torch.ao.quantization.quantize_dynamic``): int8 ``nn.Linear`` weights, activations
    quantized on the fly per batch. Convolutions stay float (dynamic mode does not cover them).
    Returns a quantized copy; ``model`` is left as it was."""
    from torch.ao.quantization import quantize_dynamic

    m = clone(_check_module(model)).cpu().eval()
    with _x86_engine(), _quiet_ao():
        return quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)


def static_int8_fx(model: nn.Module, calib_x, per_channel: bool = True, weight_bits: int = 8,
                   batch_size: int = 256) -> nn.Module:
    """Post-training static int8 with FX graph mode (x86 backend): observe, calibrate, convert.

    Args:
        model: a float model (left unchanged; a copy is quantized, on the CPU).
        calib_x: calibration inputs (a few hundred training samples): they fix activation ranges.
        per_channel: per-channel (default) or per-tensor weight scales.
        weight_bits: see :func:`qconfig_mapping`.
    Returns:
        The converted ``GraphModule`` with int8 kernels.
    """
    from torch.ao.quantization import quantize_fx

    m = _fusable(_check_module(model)).cpu().eval()
    batches = list(_batches(calib_x, batch_size))
    with _x86_engine(), _quiet_ao():
        prepared = quantize_fx.prepare_fx(m, qconfig_mapping(per_channel, weight_bits),
                                          example_inputs=(batches[0][:1],))
        with torch.no_grad():
            for xb in batches:
                prepared(xb)
        return quantize_fx.convert_fx(prepared)


def prepare_qat_fx(model: nn.Module, example, per_channel: bool = True,
                   weight_bits: int = 8) -> nn.Module:
    """Insert fake-quantize modules for quantization-aware training (a copy, in train mode).

    Train the result as usual (``greenlab.fit``), then call :func:`convert_fx` on it.
    """
    from torch.ao.quantization import quantize_fx

    m = _fusable(_check_module(model)).cpu().train()
    ex = float_tensor(example, "example")
    with _x86_engine(), _quiet_ao():
        return quantize_fx.prepare_qat_fx(m, qconfig_mapping(per_channel, weight_bits, qat=True),
                                          example_inputs=(ex[:1],))


def convert_fx(prepared: nn.Module) -> nn.Module:
    """Convert a QAT-prepared (or calibrated) model to int8 kernels (a copy, in eval mode)."""
    from torch.ao.quantization import quantize_fx

    m = clone(_check_module(prepared)).cpu().eval()
    with _x86_engine(), _quiet_ao():
        return quantize_fx.convert_fx(m)
