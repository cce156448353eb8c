"""The small reference models every lesson reuses, built from ``torch.nn`` only.

* :func:`linear` -- multinomial logistic regression.
* :func:`mlp` -- a multilayer perceptron (MNIST-1D 40-100-100-10, digits 64-...-10).
* :func:`cnn1d` -- the 1-D CNN of the MNIST-1D paper (``ConvBase``: three strided convs, one linear).
* :func:`rnn` -- a GRU / LSTM / vanilla RNN classifier over the signal as a sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from ._internal.validate import integer

__all__ = ["linear", "mlp", "cnn1d", "rnn", "CNN1d", "RNNClassifier"]


def _positive(name: str, value) -> int:
    return integer(name, value, minimum=1)


def linear(in_features: int = 40, n_classes: int = 10) -> nn.Module:
    """Logistic regression as a torch module (flattens its input)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(_positive("in_features", in_features),
                                                 _positive("n_classes", n_classes)))


def mlp(in_features: int = 40, hidden: tuple[int, ...] = (100, 100), n_classes: int = 10,
        dropout: float = 0.0) -> nn.Sequential:
    """A ReLU multilayer perceptron: ``Flatten, (Linear, ReLU[, Dropout])*, Linear``."""
    _positive("in_features", in_features)
    _positive("n_classes", n_classes)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for i, h in enumerate(hidden):
        layers += [nn.Linear(width, _positive(f"hidden[{i}]", h)), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class CNN1d(nn.Module):
    """MNIST-1D's ``ConvBase``: conv(5, s2) -> conv(3, s2) -> conv(3, s2) -> flatten -> linear.

    Accepts ``(N, L)`` or ``(N, 1, L)`` input. ``hidden`` adds a fully connected layer before the
    classifier (lesson 05 factorizes it).
    """

    def __init__(self, channels: int = 25, n_classes: int = 10, length: int = 40,
                 hidden: int | None = None):
        super().__init__()
        c = _positive("channels", channels)
        _positive("n_classes", n_classes)
        _positive("length", length)
        self.conv1 = nn.Conv1d(1, c, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        out_len = length
        for k in (5, 3, 3):
            out_len = (out_len + 2 - k) // 2 + 1
        if out_len < 1:
            raise ValueError(f"length must be >= 6 for three strided convs, got {length}")
        flat = c * out_len
        if hidden is None:
            self.fc = None
            self.linear = nn.Linear(flat, n_classes)
        else:
            self.fc = nn.Linear(flat, _positive("hidden", hidden))
            self.linear = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, x.shape[-1])
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        x = torch.flatten(x, 1)
        if self.fc is not None:
            x = torch.relu(self.fc(x))
        return self.linear(x)


def cnn1d(channels: int = 25, n_classes: int = 10, length: int = 40,
          hidden: int | None = None) -> CNN1d:
    """The MNIST-1D CNN (25 channels: 4k parameters, ~92 % test accuracy with augmentation)."""
    return CNN1d(channels, n_classes, length, hidden)


class RNNClassifier(nn.Module):
    """Reads a 1-D signal in chunks as a sequence; classifies from the last hidden state."""

    def __init__(self, cell: str = "gru", hidden: int = 32, n_classes: int = 10, chunk: int = 1,
                 bidirectional: bool = False):
        super().__init__()
        cells = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
        if cell not in cells:
            raise ValueError(f"cell must be one of {sorted(cells)}, got {cell!r}")
        self.chunk = _positive("chunk", chunk)
        self.rnn = cells[cell](chunk, _positive("hidden", hidden), batch_first=True,
                               bidirectional=bidirectional)
        self.linear = nn.Linear(hidden * (2 if bidirectional else 1), _positive("n_classes", n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] % self.chunk:
            raise ValueError(f"signal length {x.shape[1]} is not a multiple of chunk={self.chunk}")
        out, _ = self.rnn(x.reshape(x.shape[0], -1, self.chunk))
        return self.linear(out[:, -1])


def rnn(cell: str = "gru", hidden: int = 32, n_classes: int = 10, chunk: int = 1,
        bidirectional: bool = False) -> RNNClassifier:
    """A recurrent classifier (``cell``: ``"gru"``, ``"lstm"`` or ``"rnn"``)."""
    return RNNClassifier(cell, hidden, n_classes, chunk, bidirectional)
