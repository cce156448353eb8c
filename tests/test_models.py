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
    with pytest.raises(ValueError, match="length must be >= 6"):
        models.cnn1d(8, length=2)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_rnn_cells(cell):
    m = models.rnn(cell, hidden=6, chunk=4)
    assert m(torch.zeros(5, 40)).shape == (5, 10)
    with pytest.raises(ValueError, match="not a multiple of chunk"):
        models.rnn(cell, hidden=6, chunk=3)(torch.zeros(1, 40))


def test_lstm_has_more_parameters_than_gru():
    gru, lstm = models.rnn("gru", 16), models.rnn("lstm", 16)
    assert profile.count_params(lstm) > profile.count_params(gru)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: models.mlp(40, hidden=100), TypeError, "hidden must be a tuple"),
        (lambda: models.mlp(40, (0,)), ValueError, r"hidden\[0\] must be >= 1"),
        (lambda: models.mlp(40, dropout=1.0), ValueError, "dropout must be in"),
        (lambda: models.cnn1d(channels=2.5), TypeError, "channels must be an int"),
        (lambda: models.linear(0), ValueError, "in_features must be >= 1"),
        (lambda: models.rnn("transformer"), ValueError, "cell must be one of"),
    ],
)
def test_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()
