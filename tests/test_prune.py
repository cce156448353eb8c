"""greenlab.techniques.prune: magnitude pruning through torch.nn.utils.prune, schedules, channel removal."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import greenlab as gl
from greenlab.techniques import prune as gp


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return gl.models.mlp(8, (16, 12), 3)


def _cnn(channels: int = 6, hidden: int | None = None) -> gl.models.CNN1d:
    torch.manual_seed(0)
    return gl.models.cnn1d(channels=channels, n_classes=4, length=20, hidden=hidden)


def _zeros(model) -> float:
    return gl.profile.sparsity(model)


# --------------------------------------------------------------------------- unstructured


def test_prunable_lists_weighted_layers_in_order():
    names = [n for n, _ in gp.prunable(_mlp())]
    assert names == ["1", "3", "5"]
    with pytest.raises(ValueError, match="no layers of types"):
        gp.prunable(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        gp.prunable("model")
    with pytest.raises(TypeError, match="module_types"):
        gp.prunable(_mlp(), module_types=("Linear",))


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, state) -> bool:
    now = model.state_dict()
    return list(now) == list(state) and all(torch.equal(now[k], v) for k, v in state.items())


def test_global_magnitude_matches_torch_global_unstructured():
    ref = _mlp()
    ours = gp.global_magnitude(_mlp(), 0.7)
    params = [(m, "weight") for m in ref.modules() if isinstance(m, nn.Linear)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.7)
    for a, b in zip(gp.prunable(ours), gp.prunable(ref), strict=True):
        assert torch.equal(a[1].weight_mask, b[1].weight_mask)
    assert _zeros(ours) == pytest.approx(0.7, abs=1 / 500)
    assert gp.is_pruned(ours)


def test_global_threshold_gives_layers_different_sparsities():
    model = _mlp()
    with torch.no_grad():
        model[1].weight.mul_(10)  # a layer of large weights keeps more of them
    model = gp.global_magnitude(model, 0.8)
    per_layer = gp.layer_sparsity(model)
    assert per_layer["1"] < 0.8 < max(per_layer.values())
    total = sum(m.weight.numel() for _, m in gp.prunable(model))
    assert round(0.8 * total) == sum(int((m.weight == 0).sum()) for _, m in gp.prunable(model))


def test_layerwise_magnitude_prunes_each_layer_equally():
    model = gp.layerwise_magnitude(_mlp(), 0.5)
    for name, value in gp.layer_sparsity(model).items():
        assert value == pytest.approx(0.5, abs=0.02), name


def test_pruning_again_reaches_the_new_target_and_never_undoes():
    half = gp.global_magnitude(_mlp(), 0.5)
    model = gp.global_magnitude(half, 0.9)
    assert _zeros(model) == pytest.approx(0.9, abs=1 / 300)
    assert _zeros(half) == pytest.approx(0.5, abs=1 / 300)  # the input kept its own masks
    with pytest.raises(ValueError, match="cannot be undone"):
        gp.global_magnitude(model, 0.6)
    # after make_permanent the zeros are plain weights: pruning further still counts them
    model = gp.global_magnitude(gp.make_permanent(model), 0.95)
    assert _zeros(model) == pytest.approx(0.95, abs=1 / 300)


@pytest.mark.parametrize("bad, error, message", [
    (90, ValueError, r"0\.9 for 90 %"),
    (-0.1, ValueError, r"sparsity must be a number in \[0, 1\], got -0.1"),
    (True, TypeError, "sparsity must be a number .* got bool"),
    ("0.9", TypeError, "sparsity must be a number .* got str"),
])
def test_sparsity_is_validated(bad, error, message):
    with pytest.raises(error, match=message):
        gp.global_magnitude(_mlp(), bad)
    with pytest.raises(error, match=message):
        gp.layerwise_magnitude(_mlp(), bad)


def test_make_permanent_keeps_zeros_and_drops_masks():
    pruned = gp.global_magnitude(_mlp(), 0.9)
    x = torch.randn(5, 8)
    before = pruned(x)
    model = gp.make_permanent(pruned)
    assert not gp.is_pruned(model) and gp.is_pruned(pruned)  # a plain copy; the input keeps masks
    keys = list(model.state_dict())
    assert not any(k.endswith(("_orig", "_mask")) for k in keys)
    assert torch.allclose(model(x), before)
    assert _zeros(model) == pytest.approx(0.9, abs=1 / 300)
    again = gp.make_permanent(model)  # idempotent, and still a copy
    assert again is not model and _unchanged(again, model.state_dict())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        gp.make_permanent(None)


@pytest.mark.parametrize("technique", [
    lambda m: gp.global_magnitude(m, 0.7),
    lambda m: gp.layerwise_magnitude(m, 0.7),
    gp.make_permanent,
    lambda m: gp.gradual_magnitude(m, np.zeros((16, 8), np.float32), np.arange(16) % 3, 0.7,
                                   steps=8, rounds=2)[0],
])
@pytest.mark.parametrize("already_pruned", [False, True])
def test_pruning_never_changes_the_model_it_is_given(technique, already_pruned):
    model = gp.global_magnitude(_mlp(), 0.3) if already_pruned else _mlp()
    model(torch.randn(2, 8)).sum().backward()  # a forward pass with grad: `weight` is non-leaf now
    state, training = _state(model), model.training
    out = technique(model)
    assert out is not model and _unchanged(model, state) and model.training == training
    assert gp.is_pruned(model) == already_pruned
    assert not any(p is q for p in out.parameters() for q in model.parameters())


# --------------------------------------------------------------------------- schedules


def test_polynomial_sparsity_shape():
    values = [gp.polynomial_sparsity(s, 0.9, 10, 110) for s in range(0, 130, 10)]
    assert values[0] == values[1] == 0.0
    assert values[-1] == values[-2] == pytest.approx(0.9)
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert values[2] > 0.9 * 0.1  # cubic: fast at first
    with pytest.raises(ValueError, match="end_step must be > begin_step"):
        gp.polynomial_sparsity(0, 0.9, 10, 10)
    with pytest.raises(ValueError, match="final_sparsity"):
        gp.polynomial_sparsity(0, 1.5, 0, 10)


def test_polynomial_sparsity_matches_tfmot():
    pytest.importorskip("tensorflow_model_optimization")
    try:
        tfmot = gl.tf.import_tfmot()
    except RuntimeError as exc:  # TensorFlow already imported with Keras 3 in this process
        pytest.skip(str(exc))
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.2, final_sparsity=0.9, begin_step=0, end_step=100, frequency=10)
    for step in (0, 10, 30, 50, 90, 100):
        _, value = schedule(np.int64(step))
        assert float(value) == pytest.approx(gp.polynomial_sparsity(step, 0.9, 0, 100, 0.2),
                                             abs=1e-6), step


def test_gradual_magnitude_prunes_while_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model, history = gp.gradual_magnitude(_mlp(), x, y, 0.8, steps=40, rounds=4, ramp_fraction=0.5)
    assert [h["step"] for h in history] == [0, 5, 10, 15]
    targets = [h["sparsity"] for h in history]
    assert targets == sorted(targets) and targets[-1] == pytest.approx(0.8)
    assert _zeros(model) == pytest.approx(0.8, abs=1 / 300)
    _, one_shot = gp.gradual_magnitude(_mlp(), x, y, 0.8, steps=10, rounds=1)
    assert len(one_shot) == 1 and one_shot[0]["sparsity"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="rounds=8 needs steps"):
        gp.gradual_magnitude(_mlp(), x, y, 0.8, steps=10, rounds=8)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        gp.gradual_magnitude(_mlp(), x, y, 0.8, steps=0)


# --------------------------------------------------------------------------- structured


def test_top_channels_agrees_with_ln_structured():
    conv = _cnn(10).conv2
    keep = gp.top_channels(conv.weight, 4)
    prune.ln_structured(conv, "weight", amount=6, n=1, dim=0)
    kept_by_torch = torch.nonzero(conv.weight_mask.reshape(10, -1).any(1)).flatten()
    assert torch.equal(keep, kept_by_torch)
    with pytest.raises(ValueError, match=r"keep must be an int in \[1, 10\]"):
        gp.top_channels(conv.weight, 0)
    with pytest.raises(TypeError, match=r"keep must be an int"):
        gp.top_channels(conv.weight, 4.0)


@pytest.mark.parametrize("hidden", [None, 7])
def test_channel_prune_equals_masking_those_channels(hidden):
    model = _cnn(8, hidden).eval()
    small = gp.channel_prune_conv1d(model, 0.5)
    assert isinstance(small, gl.models.CNN1d) and small.conv2.out_channels == 4
    assert gl.profile.count_params(small) < gl.profile.count_params(model) / 2
    # the library way: zero the same channels (weights and biases) with ln_structured masks
    masked = copy.deepcopy(model)
    for name in ("conv1", "conv2", "conv3"):
        conv = getattr(masked, name)
        prune.ln_structured(conv, "weight", amount=4, n=1, dim=0)
        prune.custom_from_mask(conv, "bias", conv.weight_mask.reshape(8, -1).any(1).float())
    x = torch.randn(6, 20)
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    assert gp.channel_prune_conv1d(model, 1.0)(x).allclose(model(x), atol=1e-6)
    assert not gp.is_pruned(model) and model.conv1.out_channels == 8  # the input is untouched


class _TwoConvs(nn.Module):
    """Not a CNN1d: channel pruning only needs the channel_chain() protocol."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.ModuleDict({"a": nn.Conv1d(2, 6, 3), "b": nn.Conv1d(6, 10, 3, padding=1)})
        self.out = nn.Linear(10 * 8, 3)

    def channel_chain(self):
        return ("body.a", "body.b"), "out"

    def forward(self, x):
        x = torch.relu(self.body["b"](torch.relu(self.body["a"](x))))
        return self.out(torch.flatten(x, 1))


def test_channel_prune_works_on_any_model_with_the_protocol():
    model = _TwoConvs().eval()
    small = gp.channel_prune_conv1d(model, 0.5)
    assert (small.body["a"].out_channels, small.body["b"].out_channels) == (3, 5)
    assert small.out.in_features == 5 * 8 and model.body["b"].out_channels == 10
    masked = copy.deepcopy(model)
    for conv in masked.body.values():
        prune.ln_structured(conv, "weight", amount=0.5, n=1, dim=0)
        prune.custom_from_mask(conv, "bias", conv.weight_mask.reshape(conv.out_channels, -1).any(1))
    x = torch.randn(4, 2, 10)
    with torch.no_grad():
        assert torch.allclose(small(x), masked(x), atol=1e-5)
    assert gl.models.cnn1d(4).channel_chain() == (("conv1", "conv2", "conv3"), "linear")
    assert gl.models.cnn1d(4, hidden=8).channel_chain()[1] == "fc"


def test_channel_prune_validates():
    with pytest.raises(TypeError, match="channel_chain"):
        gp.channel_prune_conv1d(_mlp(), 0.5)
    broken = _TwoConvs()
    broken.channel_chain = lambda: (("body.a", "out"), "out")
    with pytest.raises(TypeError, match="must be an nn.Conv1d"):
        gp.channel_prune_conv1d(broken, 0.5)
    broken.channel_chain = lambda: (("body.a",), "body.b")
    with pytest.raises(TypeError, match="must be an nn.Linear"):
        gp.channel_prune_conv1d(broken, 0.5)
    with pytest.raises(ValueError, match=r"keep_fraction must be a number in \(0, 1\]"):
        gp.channel_prune_conv1d(_cnn(), 50)
    with pytest.raises(TypeError, match="keep_fraction"):
        gp.channel_prune_conv1d(_cnn(), "half")


def test_channel_prune_makes_dense_inference_cheaper():
    model = _cnn(64).eval()
    small = gp.channel_prune_conv1d(model, 0.25)
    x = torch.randn(32, 1, 20)
    assert gl.profile.flops(small, x) < gl.profile.flops(model, x) / 4


# --------------------------------------------------------------------------- sizes


def test_sparse_size_shrinks_only_sparse_models():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(200, 200), nn.Linear(200, 10))
    dense_bytes = gl.profile.size_bytes(model)
    assert gp.sparse_size_bytes(model) == pytest.approx(dense_bytes, rel=0.02)  # kept dense
    model = gp.global_magnitude(model, 0.9)
    sparse_bytes = gp.sparse_size_bytes(model)
    assert sparse_bytes < dense_bytes / 3  # 8 bytes per non-zero instead of 4 per weight
    assert gp.sparse_size_bytes(gp.make_permanent(model)) == sparse_bytes
    with pytest.raises(ValueError, match="min_sparsity"):
        gp.sparse_size_bytes(model, min_sparsity=2)


def test_channel_prune_applies_masks_first_and_result_trains():
    model = gp.global_magnitude(_cnn(8), 0.5)
    model(torch.randn(2, 20)).sum().backward()  # `weight` is a non-leaf tensor now
    state = _state(model)
    small = gp.channel_prune_conv1d(model, 0.5)
    assert gp.is_pruned(model) and not gp.is_pruned(small) and _unchanged(model, state)
    assert not model.conv1.weight.is_leaf  # not even refreshed: the input is left as it was
    x, y = np.random.default_rng(0).normal(size=(16, 20)).astype(np.float32), np.arange(16) % 4
    gl.fit(small, x, y, steps=3, progress=False)
    assert small.conv2.weight.shape == (4, 4, 3) and small.linear.in_features == 4 * 3


def test_pruned_models_can_be_deep_copied():
    x = torch.randn(3, 8)
    for model in (gp.global_magnitude(_mlp(), 0.5), gp.layerwise_magnitude(_mlp(), 0.6)):
        twin = copy.deepcopy(model)  # torch leaves `weight` a non-leaf tensor after pruning
        assert torch.equal(twin(x), model(x)) and gp.is_pruned(twin)
