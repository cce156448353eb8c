import pytest
import torch

from greenlab import models, profile


@pytest.mark.parametrize(
    "model, n_params",
    [
        (models.linear(40, 10), 410),
        (models.mlp(40, (100, 100), 10), 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10),
        # conv1 1*25*5+25, conv2 25*25*3+25 (x2), linear 125*10+10: MNIST-1D's ConvBase
        (models.cnn1d(25), 150 + 2 * 1900 + 1260),
        (models.cnn1d(32, hidden=256), 192 + 2 * 3104 + 160 * 256 + 256 + 2570),
    ],
)
def test_parameter_counts(model, n_params):
    assert profile.count_params(model) == n_params
    assert model(torch.zeros(3, 40)).shape == (3, 10)


def test_cnn_accepts_channel_dim_and_other_lengths():
    m = models.cnn1d(8, n_classes=3, length=64)
    assert m(torch.zeros(2, 1, 64)).shape == (2, 3)
    with pytest.raises(ValueError, match="length must be >= 3"):
        models.cnn1d(8, length=2)


def test_count_params_counts_frozen_weights_too():
    model = models.mlp(40, (100,), 10)
    total = profile.count_params(model)
    model[1].requires_grad_(False)  # frozen (as in transfer learning): still stored, still counted
    assert profile.count_params(model) == total == 40 * 100 + 100 + 100 * 10 + 10


def test_clone_copies_pruned_models_after_a_forward_pass():
    import copy

    from torch.nn.utils import prune

    model = models.cnn1d(4)
    prune.l1_unstructured(model.conv2, "weight", amount=0.5)
    x = torch.randn(3, 40)
    model(x).sum().backward()  # weight = weight_orig * weight_mask, a non-leaf tensor now
    with pytest.raises(RuntimeError):
        copy.deepcopy(model)
    weight = model.conv2.weight
    twin = models.clone(model)
    assert model.conv2.weight is weight  # the original is left exactly as it was
    assert torch.equal(twin(x), model(x)) and prune.is_pruned(twin)
    with torch.no_grad():
        twin.conv2.weight_orig.add_(1.0)
    assert not torch.equal(twin(x), model(x))  # independent parameters
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        models.clone("model")


def test_removed_names_are_gone():
    assert not hasattr(models, "rnn") and not hasattr(models, "RNNClassifier")


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: models.mlp(40, hidden=100), TypeError, "hidden must be a tuple"),
        (lambda: models.mlp(40, (0,)), ValueError, r"hidden\[0\] must be >= 1"),
        (lambda: models.mlp(40, dropout=1.0), ValueError, r"dropout must be a number in \[0, 1\)"),
        (lambda: models.cnn1d(channels=2.5), TypeError, "channels must be an int"),
        (lambda: models.linear(0), ValueError, "in_features must be >= 1"),
    ],
)
def test_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()
