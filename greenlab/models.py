"""The small reference models every lesson reuses, built from ``torch.nn`` only.

* :func:`linear` -- multinomial logistic regression.
* :func:`mlp` -- a multilayer perceptron (MNIST-1D 40-100-100-10, digits 64-...-10).
* :func:`cnn1d` -- the 1-D CNN of the MNIST-1D paper (``ConvBase``: three strided convs, one linear).
* :func:`clone` -- a deep copy of any torch module, pruned ones included (techniques copy with it).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ._internal.validate import integer, number
from ._internal.validate import module as _check_module

__all__ = ["linear", "mlp", "cnn1d", "CNN1d", "clone"]


def _positive(name: str, value) -> int:
    return integer(name, value, minimum=1)


def linear(in_features: int = 40, n_classes: int = 10) -> nn.Module:
    """Logistic regression as a torch module (flattens its input)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(_positive("in_features", in_features),
                                                 _positive("n_classes", n_classes)))


def mlp(in_features: int = 40, hidden: tuple[int, ...] = (100, 100), n_classes: int = 10,
        dropout: float = 0.0) -> nn.Sequential:
    """A ReLU multilayer perceptron: ``Flatten, (Linear, ReLU[, Dropout])*, Linear``."""
    in_features = _positive("in_features", in_features)
    n_classes = _positive("n_classes", n_classes)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    dropout = number("dropout", dropout, 0, 1, high_open=True)
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for i, h in enumerate(hidden):
        h = _positive(f"hidden[{i}]", h)
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class CNN1d(nn.Module):
    """MNIST-1D's ``ConvBase``: conv(5, s2) -> conv(3, s2) -> conv(3, s2) -> flatten -> linear.

    Accepts ``(N, L)`` or ``(N, 1, L)`` input. ``hidden`` adds a fully connected layer before the
    classifier (lesson 05 factorizes it). :meth:`channel_chain` names the layers that channel
    pruning slices.
    """

    def __init__(self, channels: int = 25, n_classes: int = 10, length: int = 40,
                 hidden: int | None = None):
        super().__init__()
        c = _positive("channels", channels)
        n_classes = _positive("n_classes", n_classes)
        self.length = length = _positive("length", length)  # input samples per signal
        self.conv1 = nn.Conv1d(1, c, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        out_len = length
        for k in (5, 3, 3):
            out_len = (out_len + 2 - k) // 2 + 1
        if out_len < 1:
            raise ValueError(f"length must be >= 3 for three strided convs, got {length}")
        flat = c * out_len
        if hidden is None:
            self.fc = None
            self.linear = nn.Linear(flat, n_classes)
        else:
            hidden = _positive("hidden", hidden)
            self.fc = nn.Linear(flat, hidden)
            self.linear = nn.Linear(hidden, n_classes)

    def channel_chain(self) -> tuple[tuple[str, ...], str]:
        """``(convs, head)``: the ``Conv1d`` layers in order, each feeding the next through an
        elementwise activation only, and the ``Linear`` layer that reads the last conv's output
        flattened channel-major. The protocol :func:`greenlab.techniques.prune.channel_prune_conv1d`
        relies on: a model that provides it can lose channels."""
        return ("conv1", "conv2", "conv3"), ("linear" if self.fc is None else "fc")

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


def clone(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` that leaves ``model`` exactly as it was.

    ``copy.deepcopy`` refuses a module pruned with ``torch.nn.utils.prune`` after a forward pass
    (its ``weight`` is then a non-leaf tensor, ``weight_orig * weight_mask``); here such a weight is
    copied as a plain tensor, and the copy's pruning hook recomputes it on its first forward pass.
    """
    _check_module(model)
    memo: dict[int, object] = {}
    with torch.no_grad():
        for m in model.modules():
            originals = {n for n, _ in m.named_parameters(recurse=False) if n.endswith("_orig")}
            for name, value in vars(m).items():
                if name + "_orig" in originals and torch.is_tensor(value) and not value.is_leaf:
                    memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)
