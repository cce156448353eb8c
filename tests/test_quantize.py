"""greenlab.techniques.quantize: the teaching maths equals torch bit for bit; the library wrappers work offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import no_deterministic_algorithms  # noqa: F401  (the fixture pytestmark uses)
from torch import nn

import greenlab as gl
from greenlab.techniques import quantize as glq

pytestmark = pytest.mark.usefixtures("no_deterministic_algorithms")


@pytest.fixture(scope="module")
def tiny():
    """A small trained-looking CNN (random weights, fixed seed) and inputs."""
    torch.manual_seed(0)
    model = gl.models.cnn1d(16).eval()
    x = torch.randn(300, 40)
    return model, x


# ----------------------------------------------------------------------------- maths


def test_int_range():
    assert glq.int_range(8) == (-128, 127)
    assert glq.int_range(8, signed=False) == (0, 255)
    assert glq.int_range(4) == (-8, 7)
    for bad in (1, 17):
        with pytest.raises(ValueError, match="bits must be"):
            glq.int_range(bad)
    for bad in (8.0, True, "8"):  # a wrong type is a TypeError, not a ValueError
        with pytest.raises(TypeError, match="bits must be an int"):
            glq.int_range(bad)


@pytest.mark.parametrize("lo,hi", [(-1.3, 2.7), (0.2, 5.0), (-4.0, -0.5), (0.0, 0.0), (-1e-3, 1e3)])
@pytest.mark.parametrize("dtype,symmetric", [(torch.quint8, False), (torch.qint8, False),
                                             (torch.qint8, True), (torch.quint8, True)])
def test_affine_params_match_torch_observer(lo, hi, dtype, symmetric):
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    obs = torch.ao.quantization.MinMaxObserver(dtype=dtype, qscheme=qscheme)
    obs(torch.tensor([lo, hi]))
    want_scale, want_zp = obs.calculate_qparams()
    qmin, qmax = (0, 255) if dtype == torch.quint8 else (-128, 127)
    scale, zp = glq.affine_params(lo, hi, qmin, qmax, symmetric=symmetric)
    assert scale.dtype == torch.float32 and zp.dtype == torch.int64
    assert torch.equal(scale.reshape(1), want_scale) and torch.equal(zp.reshape(1), want_zp)


def test_affine_params_per_channel_match_torch_observer():
    torch.manual_seed(1)
    w = torch.randn(12, 5, 3) * torch.rand(12, 1, 1) * 3
    obs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                         qscheme=torch.per_channel_symmetric)
    obs(w)
    want_scale, want_zp = obs.calculate_qparams()
    flat = w.reshape(12, -1)
    scale, zp = glq.affine_params(flat.min(1).values, flat.max(1).values, symmetric=True)
    assert torch.equal(scale, want_scale) and torch.equal(zp, want_zp)


def test_affine_params_include_zero_and_validate():
    scale, zp = glq.affine_params(2.0, 6.0, 0, 255)  # widened to [0, 6]: 0 maps to an integer
    assert float(scale) == pytest.approx(6.0 / 255) and int(zp) == 0
    with pytest.raises(ValueError, match="x_min must be <= x_max"):
        glq.affine_params(1.0, -1.0)
    with pytest.raises(ValueError, match="qmin must be < qmax"):
        glq.affine_params(-1.0, 1.0, 127, -128)
    with pytest.raises(TypeError, match="qmin must be an int"):
        glq.affine_params(-1.0, 1.0, -128.0, 127)
    with pytest.raises(TypeError, match="x_min must be"):
        glq.affine_params("a", 1.0)
    with pytest.raises(ValueError, match="same shape"):
        glq.affine_params(torch.zeros(3), torch.ones(2))


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation")
@pytest.mark.parametrize("dtype", [torch.quint8, torch.qint8])
def test_quantize_per_tensor_is_bit_exact(dtype):
    gen = torch.Generator().manual_seed(2)
    qmin, qmax = (0, 255) if dtype == torch.quint8 else (-128, 127)
    for _ in range(10):
        x = torch.randn(50_000, generator=gen) * float(torch.rand(1, generator=gen) * 8)
        scale = float(torch.rand(1, generator=gen) * 0.1 + 1e-3)
        zp = int(torch.randint(qmin, qmax + 1, (1,), generator=gen))
        want = torch.quantize_per_tensor(x, scale, zp, dtype).int_repr().to(torch.int32)
        got = glq.quantize(x, scale, zp, qmin, qmax)
        assert got.dtype == torch.int32
        assert torch.equal(got, want)


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation")
def test_quantize_per_channel_is_bit_exact():
    gen = torch.Generator().manual_seed(3)
    for axis in (0, 1):
        w = torch.randn(16, 8, 3, generator=gen)
        n = w.shape[axis]
        scales = torch.rand(n, generator=gen) * 0.05 + 1e-3
        zps = torch.zeros(n, dtype=torch.int64)
        want = torch.quantize_per_channel(w, scales.double(), zps, axis, torch.qint8).int_repr()
        got = glq.quantize(w, scales, zps, axis=axis)
        assert torch.equal(got, want.to(torch.int32))


def test_quantize_clamps_rounds_half_even_and_validates():
    q = glq.quantize(np.array([-1000.0, 0.5, 1.5, 2.5, 1000.0]), 1.0, 0)
    assert q.tolist() == [-128, 0, 2, 2, 127]
    with pytest.raises(ValueError, match="scale must be > 0"):
        glq.quantize(np.ones(2), 0.0, 0)
    with pytest.raises(ValueError, match="per-tensor parameters must be scalars"):
        glq.quantize(np.ones((2, 3)), np.ones(2), 0)
    with pytest.raises(ValueError, match="axis must be in"):
        glq.quantize(np.ones((2, 3)), np.ones(2), np.zeros(2), axis=2)
    with pytest.raises(TypeError, match="x must be"):
        glq.quantize([1.0, 2.0], 1.0, 0)


def test_dequantize_round_trip_error_is_at_most_half_a_step():
    x = torch.linspace(-3, 5, 1001)
    scale, zp = glq.affine_params(x.min(), x.max(), 0, 255)
    x_hat = glq.dequantize(glq.quantize(x, scale, zp, 0, 255), scale, zp)
    assert x_hat.dtype == torch.float32
    assert float((x - x_hat).abs().max()) <= float(scale) / 2 + 1e-6
    assert float(glq.dequantize(glq.quantize(0.0, scale, zp, 0, 255), scale, zp)) == 0.0


def test_fake_quantize_per_channel_beats_per_tensor_on_uneven_channels():
    torch.manual_seed(4)
    w = torch.randn(32, 16) * torch.logspace(-2, 0, 32).unsqueeze(1)  # ranges differ 100x
    err_t = (glq.fake_quantize(w, 4) - w).abs().mean()
    err_c = (glq.fake_quantize(w, 4, per_channel=True) - w).abs().mean()
    assert err_c < err_t / 2
    assert float((glq.fake_quantize(w, 8) - w).abs().max()) < 0.01
    with pytest.raises(ValueError, match="bits must be"):
        glq.fake_quantize(w, 1)


# ----------------------------------------------------------------------------- torch.ao


def test_weight_bytes_int8_is_a_quarter(tiny):
    model, x = tiny
    assert glq.weight_bytes(model) == 4 * sum(m.weight.numel() for m in model.modules()
                                              if isinstance(m, (nn.Conv1d, nn.Linear)))
    q = glq.static_int8_fx(model, x)
    assert glq.weight_bytes(q) * 4 == glq.weight_bytes(model)
    with pytest.raises(TypeError, match="model must be"):
        glq.weight_bytes("model")


@pytest.mark.parametrize("per_channel", [True, False])
def test_static_int8_fx_quantizes_and_stays_close(tiny, per_channel):
    model, x = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = glq.static_int8_fx(model, x, per_channel=per_channel)
    gl.checks.quantized(q)
    # torch.relu after each conv is fused into one int8 conv+relu kernel, not left as a float op
    fused = torch.ao.nn.intrinsic.quantized.ConvReLU1d
    assert all(isinstance(m, fused) for m in (q.conv1, q.conv2, q.conv3)), q
    with torch.no_grad():
        ref, out = model(x), q(x)
    assert float((ref - out).abs().max()) < 0.1 * float(ref.abs().max())
    assert (ref.argmax(1) == out.argmax(1)).float().mean() > 0.9
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # untouched


def test_static_int8_fx_validates(tiny):
    model, x = tiny
    with pytest.raises(TypeError, match="model must be"):
        glq.static_int8_fx(object(), x)
    with pytest.raises(ValueError, match="calib_x must hold"):
        glq.static_int8_fx(model, x[:0])
    with pytest.raises(ValueError, match="batch_size must be"):
        glq.static_int8_fx(model, x, batch_size=0)
    with pytest.raises(ValueError, match="weight_bits must be"):
        glq.static_int8_fx(model, x, weight_bits=9)
    with pytest.raises(TypeError, match="weight_bits must be an int"):
        glq.static_int8_fx(model, x, weight_bits=8.0)


def test_fewer_weight_bits_cost_more_error(tiny):
    model, x = tiny
    with torch.no_grad():
        ref = model(x)
        err8 = (glq.static_int8_fx(model, x)(x) - ref).abs().mean()
        err3 = (glq.static_int8_fx(model, x, per_channel=False, weight_bits=3)(x) - ref).abs().mean()
    assert err3 > 2 * err8


def test_dynamic_int8_quantizes_linear_only():
    torch.manual_seed(0)
    model = gl.models.mlp(40, (32,), 10).eval()
    q = glq.dynamic_int8(model)
    assert "dynamic" in type(q[1]).__module__
    assert isinstance(model[1], nn.Linear)  # the original is left as it was
    x = torch.randn(64, 40)
    with torch.no_grad():
        assert float((q(x) - model(x)).abs().max()) < 0.05


@pytest.mark.parametrize("weight_only", [False, True])
def test_torchao_int8_quantizes_linear_layers_of_a_copy(weight_only):
    torch.manual_seed(0)
    model = gl.models.mlp(40, (32,), 10).eval()
    q = glq.torchao_int8(model, weight_only=weight_only)
    assert type(q[1].weight).__module__.startswith("torchao")
    assert isinstance(model[1].weight, nn.Parameter) and model[1].weight.dtype == torch.float32
    float_bytes = 4 * (40 * 32 + 32 * 10)
    assert glq.weight_bytes(model) == float_bytes and glq.weight_bytes(q) == float_bytes // 4
    assert gl.profile.count_params(q) == gl.profile.count_params(model)  # dequantized, counted
    x = torch.randn(64, 40)
    with torch.no_grad():
        assert float((q(x) - model(x)).abs().max()) < 0.05
    y = model(x).argmax(1).numpy()
    row = gl.summarize(q, x.numpy(), y, repeats=2)  # one summarize for torchao models too
    assert row.params == gl.profile.count_params(model) and row.flops is None
    assert row.accuracy > 0.9 and row.energy_samples == 2 * 64


def test_import_torchao_is_quiet_and_leaves_logging_as_it_was():
    import subprocess
    import sys

    code = ("import logging; from greenlab.techniques import quantize; quantize.import_torchao(); "
            "print(logging.getLogger('torchao').level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Failed to load" not in out.stderr and "torch.compile" not in out.stderr, out.stderr
    assert out.stdout.strip() == "0"  # NOTSET again: only the import was silenced


def test_qat_prepare_train_convert(tiny):
    model, x = tiny
    y = torch.randint(0, 10, (len(x),))
    qat = glq.prepare_qat_fx(model, x, per_channel=False, weight_bits=4)
    assert qat.training
    gl.fit(qat, x, y, steps=5, batch_size=64, progress=False, device="cpu")
    q = glq.convert_fx(qat)
    gl.checks.quantized(q)
    assert not q.training
    with pytest.raises(TypeError, match="model must be"):
        glq.convert_fx(None)


# ----------------------------------------------------------------------------- ONNX Runtime


def test_export_onnx_and_ort_runtimes(tiny, tmp_path):
    model, x = tiny
    path = gl.runtimes.export_onnx(model, x[:2], tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no side .onnx.data file
    clf = gl.runtimes.OrtClassifier(path, threads=1)
    with torch.no_grad():
        ref = model(x).numpy()
    for n in (1, 7, 300):  # dynamic batch dimension
        np.testing.assert_allclose(clf.logits(x[:n].numpy()), ref[:n], atol=1e-4)
    assert clf.size_bytes == path.stat().st_size and "OrtClassifier" in repr(clf)
    static = gl.runtimes.OrtClassifier(gl.runtimes.ort_quantize_static(path, tmp_path / "s.onnx", x), threads=1)
    dynamic = gl.runtimes.OrtClassifier(gl.runtimes.ort_quantize_dynamic(path, tmp_path / "d.onnx"), threads=1)
    for q in (static, dynamic):
        assert (q.predict(x.numpy()) == ref.argmax(1)).mean() > 0.9
        assert q.size_bytes < clf.size_bytes
    acc = gl.evaluate(static, x.numpy(), ref.argmax(1))["accuracy"]
    assert acc > 0.9


def test_onnx_helpers_validate(tiny, tmp_path):
    model, x = tiny
    with pytest.raises(ValueError, match="at least 2 samples"):
        gl.runtimes.export_onnx(model, x[:1], tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="does not exist"):
        gl.runtimes.export_onnx(model, x[:2], tmp_path / "nope" / "m.onnx")
    with pytest.raises(TypeError, match="path must be a file path"):
        gl.runtimes.ort_session(3)
    with pytest.raises(ValueError, match="is not a file"):
        gl.runtimes.ort_session(tmp_path / "missing.onnx")
    path = gl.runtimes.export_onnx(model, x[:2], tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="threads must be"):
        gl.runtimes.ort_session(path, threads=0)
    with pytest.raises(ValueError, match="calib_x must hold"):
        gl.runtimes.ort_quantize_static(path, tmp_path / "s.onnx", x[:0])


# ----------------------------------------------------------------------------- no side effects


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("convert", [
    glq.dynamic_int8,
    lambda m, x: glq.static_int8_fx(m, x),
    lambda m, x: glq.prepare_qat_fx(m, x),
    lambda m, x: glq.convert_fx(glq.prepare_qat_fx(m, x)),
], ids=["dynamic", "static", "qat-prepare", "qat-convert"])
@pytest.mark.filterwarnings("ignore:must run observer")  # qat-convert: converted untrained
def test_converters_leave_the_model_and_the_quantized_engine_as_they_were(tiny, convert):
    model, x = tiny
    model.train()
    state = _state(model)
    before = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = "qnnpack"
        out = convert(model) if convert is glq.dynamic_int8 else convert(model, x)
        assert torch.backends.quantized.engine == "qnnpack"  # restored after the call
    finally:
        torch.backends.quantized.engine = before
        model.eval()
    assert out is not model and model.conv1.__class__ is nn.Conv1d
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_the_engine_is_restored_when_a_conversion_fails(tiny):
    model, x = tiny
    before = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = "qnnpack"
        with pytest.raises(RuntimeError):  # calibration inputs of the wrong width
            glq.static_int8_fx(model, torch.randn(8, 7, 3))
        assert torch.backends.quantized.engine == "qnnpack"
    finally:
        torch.backends.quantized.engine = before


# ----------------------------------------------------------------------------- TFLite


def test_tflite_fp32_and_int8():
    tf = gl.tf.import_tf()
    tf.keras.utils.set_random_seed(0)
    km = tf.keras.Sequential([tf.keras.layers.Input((40,)), tf.keras.layers.Dense(32, "relu"),
                              tf.keras.layers.Dense(10)])
    x = np.random.default_rng(0).normal(size=(200, 40)).astype(np.float32)
    ref = km(x).numpy()
    fp32 = gl.runtimes.TFLiteClassifier(gl.runtimes.tflite_convert(km), threads=1)
    np.testing.assert_allclose(fp32.logits(x), ref, atol=1e-4)
    int8_bytes = gl.runtimes.tflite_convert(km, x[:100])
    int8 = gl.runtimes.TFLiteClassifier(int8_bytes, threads=1)
    assert int8.size_bytes < fp32.size_bytes
    assert (int8.predict(x[:10]) == ref[:10].argmax(1)).mean() >= 0.8  # batch resized on demand
    assert (int8.predict(x) == ref.argmax(1)).mean() > 0.9
    with pytest.raises(TypeError, match="keras_model must be"):
        gl.runtimes.tflite_convert(object())
    with pytest.raises(ValueError, match="only used with int8=True"):
        gl.runtimes.tflite_convert(km, x, int8=False)
    with pytest.raises(TypeError, match="model_content must be bytes"):
        gl.runtimes.TFLiteClassifier("model.tflite")
    y = ref.argmax(1)
    row = gl.summarize(int8, x, y, repeats=2, params=km.count_params())  # a session: passed through
    assert row.size_bytes == len(int8_bytes) and row.params == 40 * 32 + 32 + 32 * 10 + 10
    assert row.accuracy > 0.9 and row.flops is None and row.energy_samples == 2 * 200
