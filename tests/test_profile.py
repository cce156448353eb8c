import zlib

import numpy as np
import pytest
import torch
from sklearn.tree import DecisionTreeClassifier
from torch.nn.utils import prune

import greenlab as gl
from greenlab import profile


def test_counts_follow_pruning_masks():
    model = gl.models.mlp(10, (20,), 3)
    total = profile.count_params(model)
    prune.l1_unstructured(model[1], "weight", amount=0.5)
    assert profile.count_params(model) == total  # masks are not parameters
    assert profile.count_nonzero(model) == total - 100
    assert profile.sparsity(model) == pytest.approx(100 / (200 + 60))


def test_sizes_torch_sklearn_bytes_and_files(tmp_path):
    model = gl.models.mlp(10, (20,), 3)
    n = profile.size_bytes(model)
    assert n > profile.count_params(model) * 4  # float32 weights plus pickle framing
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert profile.compressed_size_bytes(model) < n / 2  # zeros compress
    d = gl.data.load("digits")
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(d.x_train, d.y_train)
    assert profile.size_bytes(tree) > 0
    f = tmp_path / "m.bin"
    f.write_bytes(b"x" * 1000)
    assert profile.size_bytes(f) == 1000 and profile.size_bytes(b"abc") == 3
    assert profile.compressed_size_bytes(f) == len(zlib.compress(b"x" * 1000, 9))
    with pytest.raises(ValueError, match="is not a file"):
        profile.size_bytes(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="model must be a torch module"):
        profile.size_bytes(42)
    with pytest.raises(ValueError, match=r"level must be an int in \[0, 9\], got 10"):
        profile.compressed_size_bytes(b"a", level=10)
    with pytest.raises(TypeError, match="level must be an int"):
        profile.compressed_size_bytes(b"a", level="9")


def test_size_of_a_runtime_session_is_its_stored_model():
    class Session:  # what OrtClassifier / TFLiteClassifier provide
        size_bytes = 1234

        def logits(self, x):
            return x

    assert profile.size_bytes(Session()) == 1234


def test_unmasked_state_applies_masks_and_leaves_the_model():
    model = gl.models.mlp(10, (20,), 3)
    prune.l1_unstructured(model[1], "weight", amount=0.5)
    keys = list(model.state_dict())
    state = profile.unmasked_state(model)
    assert "1.weight" in state and not any(k.endswith(("_orig", "_mask")) for k in state)
    assert torch.equal(state["1.weight"], model[1].weight_orig * model[1].weight_mask)
    assert list(model.state_dict()) == keys and prune.is_pruned(model)
    assert "unmasked_state" in profile.__all__


def test_flops_of_linear_and_conv():
    lin = torch.nn.Linear(40, 10)
    assert profile.flops(lin, torch.zeros(4, 40)) == 2 * 4 * 40 * 10
    cnn = gl.models.cnn1d(25)
    # conv1: 19 outputs x 25 ch x 5 taps; conv2: 10 x 25 x 25*3; conv3: 5 x 25 x 75; linear 125 x 10
    expected = 2 * (19 * 25 * 5 + 10 * 25 * 75 + 5 * 25 * 75 + 125 * 10)
    assert profile.flops(cnn, torch.zeros(1, 40)) == expected
    with pytest.raises(TypeError, match="example must be a torch tensor"):
        profile.flops(cnn, np.zeros((1, 40)))


def test_latency_statistics():
    lat = profile.latency(lambda: sum(range(1000)), warmup=1, repeats=15)
    assert lat.p10_ms <= lat.median_ms <= lat.p90_ms and lat.repeats == 15
    assert lat.spread_ms >= 0 and "ms" in str(lat)
    assert profile.latency(lambda: None, warmup=0, repeats=1).repeats == 1
    with pytest.raises(TypeError, match="fn must be callable"):
        profile.latency(3)
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        profile.latency(lambda: None, repeats=0)


def test_count_params_rejects_sklearn():
    with pytest.raises(TypeError, match="count_params needs a torch module"):
        profile.count_params(DecisionTreeClassifier())
    with pytest.raises(ValueError, match="model has no layers of types"):
        profile.sparsity(torch.nn.ReLU())


def test_counts_and_summary_of_int8_models():
    model = gl.models.mlp(10, (20,), 3).eval()
    q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    assert profile.count_params(q) == profile.count_params(model)
    assert 0 < profile.count_nonzero(q) <= profile.count_params(model)
    d = gl.data.load("digits")
    q64 = torch.ao.quantization.quantize_dynamic(gl.models.mlp(64, (8,), 10).eval(), {torch.nn.Linear})
    row = gl.summarize(q64, d.x_test, d.y_test, repeats=2)
    assert row["params"] == 64 * 8 + 8 + 8 * 10 + 10


def test_count_params_of_static_int8_leaves_out_fx_scales():
    from greenlab.techniques import quantize as glq

    model = gl.models.mlp(10, (20,), 3).eval()
    q = glq.static_int8_fx(model, torch.randn(50, 10))
    assert any("_scale_" in k for k in q.state_dict())  # FX's input quantization parameters
    assert profile.count_params(q) == profile.count_params(model)
