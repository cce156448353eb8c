"""Quantization: the affine int8 maths, and the real libraries that do it (torch.ao, ONNX Runtime, TFLite).

* Teaching versions: :func:`affine_params`, :func:`quantize`, :func:`dequantize`, :func:`fake_quantize`,
  checked bit for bit against ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel``.
* PyTorch (``torch.ao.quantization``, FX graph mode, x86 backend): :func:`dynamic_int8`,
  :func:`static_int8_fx`, :func:`prepare_qat_fx` / :func:`convert_fx`, :func:`weight_bytes`;
  its successor torchao: :func:`torchao_int8`.
* ONNX Runtime: :func:`export_onnx`, :func:`ort_session`, :func:`ort_quantize_dynamic`,
  :func:`ort_quantize_static`, :class:`OrtClassifier`.
* TFLite: :func:`tflite_convert`, :class:`TFLiteClassifier` (``ai_edge_litert`` interpreter).
* :func:`summarize`: accuracy, F1, latency and size of any of these, as a ledger row.

``OrtClassifier`` and ``TFLiteClassifier`` have a ``predict`` method, so ``greenlab.evaluate`` scores
them like any model. Nothing here writes into the repository: pass paths in a temporary directory.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._quiet import loggers, native_output
from ._validate import module as _check_module
from ._validate import positive

__all__ = [
    "affine_params", "quantize", "dequantize", "fake_quantize", "int_range",
    "weight_bytes", "qconfig_mapping", "dynamic_int8", "static_int8_fx", "prepare_qat_fx",
    "convert_fx", "import_torchao", "torchao_int8", "export_onnx", "ort_session",
    "ort_quantize_dynamic", "ort_quantize_static", "OrtClassifier", "tflite_convert",
    "TFLiteClassifier", "summarize",
]

_EPS = torch.finfo(torch.float32).eps  # torch's observers never return a scale below this


# ----------------------------------------------------------------------------- teaching maths


def int_range(bits: int = 8, signed: bool = True) -> tuple[int, int]:
    """``(qmin, qmax)`` of a ``bits``-bit integer: ``(-128, 127)`` signed, ``(0, 255)`` unsigned."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an int in [2, 16], got {bits!r}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _check_q(qmin: int, qmax: int) -> None:
    for name, v in (("qmin", qmin), ("qmax", qmax)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if not qmin < qmax:
        raise ValueError(f"qmin must be < qmax, got qmin={qmin}, qmax={qmax}")


def _tensor(x, name: str, dtype=torch.float32) -> torch.Tensor:
    if isinstance(x, (int, float, np.ndarray, np.generic)) and not isinstance(x, bool):
        return torch.as_tensor(x, dtype=dtype)
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype)
    raise TypeError(f"{name} must be a number, numpy array or torch tensor, got {type(x).__name__}")


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
    _check_q(qmin, qmax)
    lo, hi = _tensor(x_min, "x_min"), _tensor(x_max, "x_max")
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
        An int32 tensor of the same shape as ``x``.
    """
    _check_q(qmin, qmax)
    xt = _tensor(x, "x")
    s = _along(_tensor(scale, "scale"), xt.dim(), axis)
    z = _along(_tensor(zero_point, "zero_point", torch.int64), xt.dim(), axis)
    if bool((s <= 0).any()):
        raise ValueError("scale must be > 0")
    inv_scale = 1.0 / s  # float32, like the kernels
    t = (xt.double() * inv_scale.double() + z.double()).float()  # one rounding, like an FMA
    return torch.clamp(torch.round(t), qmin, qmax).to(torch.int32)


def dequantize(q, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """Integers back to floats: ``x ≈ (q - zero_point) * scale`` (float32)."""
    qt = _tensor(q, "q", torch.int64)
    s = _along(_tensor(scale, "scale"), qt.dim(), axis)
    z = _along(_tensor(zero_point, "zero_point", torch.int64), qt.dim(), axis)
    return (qt - z).to(torch.float32) * s


def fake_quantize(x, bits: int = 8, per_channel: bool = False, axis: int = 0,
                  symmetric: bool = True) -> torch.Tensor:
    """``dequantize(quantize(x))`` with min/max ranges: the float values ``bits``-bit integers can hold.

    Per-channel takes one range per slice along ``axis`` (output channels of a weight).
    """
    xt = _tensor(x, "x")
    qmin, qmax = int_range(bits, signed=True)
    if per_channel:
        if xt.dim() < 1:
            raise ValueError("per_channel needs x with at least one dimension")
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

    m = copy.deepcopy(_check_module(model)).cpu().eval()
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

    if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not 2 <= weight_bits <= 8:
        raise ValueError(f"weight_bits must be an int in [2, 8], got {weight_bits!r}")
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
    xt = _tensor(x, "calib_x")
    if xt.dim() < 1 or len(xt) == 0:
        raise ValueError("calib_x must hold at least one sample")
    for i in range(0, len(xt), batch_size):
        yield xt[i:i + batch_size]


def _fusable(model: nn.Module) -> nn.Module:
    """A traced copy where ``torch.relu(x)`` calls read ``F.relu(x)``: the backend's fusion patterns
    name ``F.relu`` and ``nn.ReLU`` only, so a ``torch.relu`` after a conv would stay a float op
    wrapped in dequantize / quantize instead of fusing into one int8 conv+relu kernel."""
    gm = torch.fx.symbolic_trace(copy.deepcopy(model))
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

    m = copy.deepcopy(_check_module(model)).cpu().eval()
    torch.backends.quantized.engine = "x86"
    with _quiet_ao():
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
    torch.backends.quantized.engine = "x86"
    with _quiet_ao():
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
    ex = _tensor(example, "example")
    torch.backends.quantized.engine = "x86"
    with _quiet_ao():
        return quantize_fx.prepare_qat_fx(m, qconfig_mapping(per_channel, weight_bits, qat=True),
                                          example_inputs=(ex[:1],))


def convert_fx(prepared: nn.Module) -> nn.Module:
    """Convert a QAT-prepared (or calibrated) model to int8 kernels (a copy, in eval mode)."""
    from torch.ao.quantization import quantize_fx

    m = copy.deepcopy(_check_module(prepared)).cpu().eval()
    with _quiet_ao():
        return quantize_fx.convert_fx(m)


# ----------------------------------------------------------------------------- ONNX Runtime


def _path(path, name: str, must_exist: bool = False) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path, got {type(path).__name__}")
    p = Path(path)
    if must_exist and not p.is_file():
        raise ValueError(f"{name} {str(p)!r} is not a file")
    if not must_exist and not p.parent.is_dir():
        raise ValueError(f"{name}: folder {str(p.parent)!r} does not exist")
    return p


def export_onnx(model: nn.Module, example, path) -> Path:
    """Export a float model with the dynamo exporter: one self-contained ``.onnx`` file
    (``external_data=False``, no side ``.onnx.data``), input ``x`` with a dynamic batch dimension."""
    m = _check_module(model)
    ex = _tensor(example, "example")
    if ex.dim() < 1 or len(ex) < 2:
        raise ValueError("example must be a batch of at least 2 samples (the batch size is dynamic)")
    p = _path(path, "path")
    was_training = m.training
    m = m.cpu().eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:  # torch.onnx logs "torchvision is not installed. Skipping torchvision::nms"
        with warnings.catch_warnings(), loggers("torch.onnx"):
            warnings.simplefilter("ignore")
            torch.onnx.export(m, (ex,), str(p), dynamo=True, external_data=False,
                              input_names=["x"], output_names=["logits"],
                              dynamic_shapes=({0: batch},), verbose=False)
    finally:
        m.train(was_training)
    return p


def ort_session(path, threads: int = 2):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (and one inter-op thread)."""
    import onnxruntime as ort

    p = _path(path, "path", must_exist=True)
    positive("threads", threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])


def _input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


def _pre_process(src: Path, tmp: str) -> Path:
    """ORT's recommended preparation (shape inference, graph optimization) before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = Path(tmp) / "pre.onnx"
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    return pre


def ort_quantize_dynamic(path_in, path_out) -> Path:
    """ONNX Runtime dynamic int8: weights int8 offline, activations quantized per batch at run time.

    Convolutions become ``ConvInteger`` nodes, which ORT runs slowly on CPU: measure before using.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = _path(path_in, "path_in", must_exist=True), _path(path_out, "path_out")
    with tempfile.TemporaryDirectory() as tmp:
        quantize_dynamic(str(_pre_process(src, tmp)), str(dst), weight_type=QuantType.QInt8)
    return dst


def ort_quantize_static(path_in, path_out, calib_x, per_channel: bool = False,
                        batch_size: int = 256) -> Path:
    """ONNX Runtime static int8 (QDQ format), activation ranges calibrated (min/max) on ``calib_x``.

    The float model is first passed through ORT's ``quant_pre_process`` (shape inference and
    graph optimization), as ORT's documentation recommends.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    src, dst = _path(path_in, "path_in", must_exist=True), _path(path_out, "path_out")
    batches = [b.numpy() for b in _batches(calib_x, batch_size)]
    name = _input_name(src)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            xb = next(self._it, None)
            return None if xb is None else {name: xb}

        def rewind(self):
            self._it = iter(batches)

    with tempfile.TemporaryDirectory() as tmp:
        quantize_static(str(_pre_process(src, tmp)), str(dst), _Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    return dst


class OrtClassifier:
    """An ONNX model as a classifier: ``logits(x)``, ``predict(x)``; ``greenlab.evaluate`` accepts it."""

    def __init__(self, path, threads: int = 2):
        self.path = _path(path, "path", must_exist=True)
        self.session = ort_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def logits(self, x) -> np.ndarray:
        xb = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        return self.session.run(None, {self.input_name: xb})[0]

    def predict(self, x) -> np.ndarray:
        return self.logits(x).argmax(-1)

    def __repr__(self) -> str:
        return f"OrtClassifier({self.path.name!r}, {self.size_bytes:,} bytes)"


# ----------------------------------------------------------------------------- TFLite


def tflite_convert(keras_model, representative_x=None, int8: bool | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (bytes).

    Args:
        keras_model: a ``tf.keras`` model (float, or a ``tfmot`` quantization-aware model).
        representative_x: a few hundred inputs: full int8 (weights *and* activations) with
            int8 builtin ops only; inputs/outputs stay float32.
        int8: quantize (default: when ``representative_x`` is given). ``int8=True`` without
            representative data is for QAT models, whose ranges were learned in training.
    """
    from . import tf as gltf

    tf = gltf.import_tf()
    if not isinstance(keras_model, tf.keras.Model):
        raise TypeError(f"keras_model must be a tf.keras.Model, got {type(keras_model).__name__}")
    int8 = representative_x is not None if int8 is None else int8
    if representative_x is not None and not int8:
        raise ValueError("representative_x is only used with int8=True")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative_x is not None:
        rep = np.asarray(representative_x, dtype=np.float32)
        if rep.ndim < 2 or len(rep) == 0:
            raise ValueError("representative_x must be a batch of samples, got shape "
                             f"{rep.shape}")

        def gen():
            for i in range(len(rep)):
                yield [rep[i:i + 1]]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings(), native_output():
        # "Statistics for quantized inputs were expected": our inputs stay float32, on purpose
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


class TFLiteClassifier:
    """A TFLite flatbuffer run by ``ai_edge_litert``'s interpreter: ``logits(x)``, ``predict(x)``.

    The batch dimension is resized on demand (the converter fixes it to 1).
    """

    def __init__(self, model_content: bytes, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        if not isinstance(model_content, (bytes, bytearray)):
            raise TypeError(f"model_content must be bytes (tflite_convert's result), got "
                            f"{type(model_content).__name__}")
        positive("threads", threads)
        self.model_content = bytes(model_content)
        with native_output():
            self.interpreter = Interpreter(model_content=self.model_content, num_threads=threads)
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        self._batch = None

    @property
    def size_bytes(self) -> int:
        return len(self.model_content)

    def logits(self, x) -> np.ndarray:
        xb = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        xb = xb.reshape((len(xb), *self._in["shape"][1:]))
        if self._batch != len(xb):
            self.interpreter.resize_tensor_input(self._in["index"], list(xb.shape))
            with native_output():  # XNNPACK announces itself on the first allocation
                self.interpreter.allocate_tensors()
            self._batch = len(xb)
        self.interpreter.set_tensor(self._in["index"], xb)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out["index"]).copy()

    def predict(self, x) -> np.ndarray:
        return self.logits(x).argmax(-1)

    def __repr__(self) -> str:
        return f"TFLiteClassifier({self.size_bytes:,} bytes)"


# ----------------------------------------------------------------------------- one row per variant


def summarize(model, x_test, y_test, params: int | None = None, batch_size: int = 256,
              repeats: int = 20) -> dict:
    """Accuracy, F1, latency (median ms per batch of ``batch_size``) and serialized size of a float or
    quantized torch module, an :class:`OrtClassifier` or a :class:`TFLiteClassifier`.

    Keys are ledger columns, so ``greenlab.log(..., **summarize(...))`` stores the row as it is.
    Unlike ``greenlab.summarize`` it handles int8 modules and other runtimes; ``params`` (the
    float model's count: quantizing does not change it) is passed through when given.
    """
    from .profile import latency, size_bytes
    from .train import evaluate

    if not isinstance(model, (nn.Module, OrtClassifier, TFLiteClassifier)):
        raise TypeError("model must be a torch module, an OrtClassifier or a TFLiteClassifier, got "
                        f"{type(model).__name__}")
    if params is not None and (isinstance(params, bool) or not isinstance(params, int) or params < 0):
        raise ValueError(f"params must be a non-negative int or None, got {params!r}")
    row = evaluate(model, x_test, y_test)
    batch = np.ascontiguousarray(np.asarray(x_test[:batch_size], dtype=np.float32))
    if isinstance(model, nn.Module):
        xb = torch.as_tensor(batch)
        lat = latency(lambda: model(xb), repeats=repeats)
        size = size_bytes(model)
    else:
        lat = latency(lambda: model.logits(batch), repeats=repeats)
        size = model.size_bytes
    row.update(latency_ms=lat.median_ms, size_bytes=size)
    if params is not None:
        row["params"] = params
    return row
