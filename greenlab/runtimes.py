"""Runtimes outside PyTorch: ONNX export and ONNX Runtime, TFLite and the LiteRT interpreter.

* ONNX Runtime: :func:`export_onnx`, :func:`ort_session`, :func:`ort_quantize_dynamic`,
  :func:`ort_quantize_static`, :class:`OrtClassifier`.
* TFLite: :func:`tflite_convert`, :class:`TFLiteClassifier` (``ai_edge_litert`` interpreter).

Lessons 03 (quantization) and 10 (edge export) use them. ``OrtClassifier`` and ``TFLiteClassifier``
have ``logits`` / ``predict`` and ``size_bytes``, so ``greenlab.evaluate`` and ``greenlab.summarize``
treat them like any model. Nothing here writes into the repository: pass paths in a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._internal.quiet import loggers, native_output
from ._internal.validate import float_tensor, positive
from ._internal.validate import module as _check_module

__all__ = ["export_onnx", "ort_session", "ort_quantize_dynamic", "ort_quantize_static",
           "OrtClassifier", "tflite_convert", "TFLiteClassifier"]


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
    ex = float_tensor(example, "example")
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
    positive("batch_size", batch_size)
    xs = float_tensor(calib_x, "calib_x").numpy()
    if xs.ndim < 1 or len(xs) == 0:
        raise ValueError("calib_x must hold at least one sample")
    batches = [xs[i:i + batch_size] for i in range(0, len(xs), batch_size)]
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
