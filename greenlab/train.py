"""One training loop and one evaluation for every lesson.

``fit`` trains for a number of *steps* (not epochs), so budgets are comparable across datasets and
lessons; a custom ``loss_fn(model, xb, yb)`` covers distillation, L1 penalties and the like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._internal import validate as v
from ._internal.validate import module as _check_model
from ._internal.validate import positive
from .env import device as default_device

__all__ = ["fit", "evaluate", "predict", "logits", "History"]


@dataclass
class History:
    """What :func:`fit` did: loss per logged step and wall time."""

    steps: int
    loss: list[float] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def final_loss(self) -> float:
        return self.loss[-1] if self.loss else float("nan")


def _samples(x, name: str) -> torch.Tensor:
    """``x`` (a numpy array or torch tensor of at least one sample) as a float32 tensor; NaN and
    inf refused."""
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}")
    return v.float_tensor(x, name, finite=True)


def _labels(y, name: str = "y") -> torch.Tensor:
    """Class indices ``y`` as an int64 tensor: float labels are refused unless they are whole
    numbers (casting 0.5 to 0 would train on the wrong classes)."""
    if not isinstance(y, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(y).__name__}")
    if isinstance(y, np.ndarray) and y.dtype.kind not in "iuf" or (
            isinstance(y, torch.Tensor) and (y.dtype == torch.bool or y.is_complex())):
        raise TypeError(f"{name} must hold class indices (ints), got dtype {y.dtype}")
    t = torch.as_tensor(y) if isinstance(y, np.ndarray) else y.detach()
    v.integral_values(name, t)
    return t.to(torch.long)


def _check_classes(out: torch.Tensor, yt: torch.Tensor, name: str = "y") -> None:
    """Labels a default cross-entropy can use: 1-D, in ``[0, classes)`` of the model's output."""
    if yt.dim() != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {tuple(yt.shape)} (one-hot "
                         "labels? pass y.argmax(1))")
    classes = out.shape[-1]
    low, high = int(yt.min()), int(yt.max())
    if low < 0 or high >= classes:
        raise ValueError(f"{name} must hold class indices in [0, {classes - 1}] (the model has "
                         f"{classes} outputs), got values from {low} to {high}")


def fit(
    model: nn.Module,
    x,
    y,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    log_every: int = 50,
) -> History:
    """Train ``model`` with Adam (or ``optimizer``) on ``(x, y)`` for ``steps`` mini-batches.

    Args:
        x, y: training arrays (numpy or torch); ``y`` holds class indices. NaN or inf in ``x``,
            labels that are not whole numbers (or, with the default loss, not in the model's
            classes) and an input width the model cannot read are refused with a ValueError.
        steps: number of optimizer steps (batches are drawn from a reshuffled epoch order).
        loss_fn: ``loss_fn(model, xb, yb) -> loss``; default cross-entropy on ``model(xb)``.
        augment: applied to each input batch (e.g. :func:`greenlab.data.shift_augment`).
        optimizer: replaces the default Adam (then ``lr`` and ``weight_decay`` are ignored).
        seed: makes batch order reproducible.
        device: ``"cpu"`` / ``"cuda"``; default the GPU when present.
        progress: show a tqdm bar (turn off in tests).
    Returns:
        History with the loss every ``log_every`` steps.
    """
    _check_model(model)
    xt, yt = _samples(x, "x"), _labels(y)
    if len(xt) != len(yt):
        raise ValueError(f"x and y must have the same length, got {len(xt)} and {len(yt)}")
    steps, batch_size, log_every = (positive(name, value) for name, value in (
        ("steps", steps), ("batch_size", batch_size), ("log_every", log_every)))
    lr = v.number("lr", lr, 0, low_open=True)
    weight_decay = v.number("weight_decay", weight_decay, 0)
    seed, progress = v.integer("seed", seed), v.boolean("progress", progress)
    v.function("loss_fn", loss_fn)
    v.function("augment", augment)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got "
                        f"{type(optimizer).__name__}")
    out = v.input_fits(model, xt, "x")
    if loss_fn is None:
        _check_classes(out, yt)
    dev = device or default_device()
    model.to(dev)
    model.train()
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = loss_fn or (lambda m, xb, yb: nn.functional.cross_entropy(m(xb), yb))
    gen = torch.Generator().manual_seed(seed)
    n, bs = len(xt), min(batch_size, len(xt))
    order, pos = torch.randperm(n, generator=gen), 0
    history = History(steps=steps)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="training", leave=False)
    t0 = time.perf_counter()
    running = 0.0
    for step in range(1, steps + 1):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        xb, yb = xt[idx].to(dev), yt[idx].to(dev)
        if augment is not None:
            xb = augment(xb)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, xb, yb)
        loss.backward()
        opt.step()
        running += float(loss.detach())
        if step % log_every == 0 or step == steps:
            count = log_every if step % log_every == 0 else step % log_every
            history.loss.append(running / count)
            running = 0.0
            if bar is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    history.time_s = time.perf_counter() - t0
    model.eval()
    return history


@torch.no_grad()
def logits(model: nn.Module, x, batch_size: int = 1024) -> torch.Tensor:
    """A torch module's outputs for every row of ``x``, in batches on the model's device, in eval
    mode and without gradients; returned on the CPU."""
    _check_model(model)
    batch_size = positive("batch_size", batch_size)
    xt = _samples(x, "x")
    model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    with v.explains_width(model, xt, "x"):  # no extra forward pass: only a failing one is explained
        return torch.cat([model(xt[i:i + batch_size].to(dev)).cpu()
                          for i in range(0, len(xt), batch_size)])


def predict(model, x, batch_size: int = 1024) -> np.ndarray:
    """Class predictions for ``x`` from a torch module (in eval mode) or a scikit-learn model."""
    if hasattr(model, "predict") and not isinstance(model, nn.Module):
        return np.asarray(model.predict(_samples(x, "x").numpy().reshape(len(x), -1)))
    return logits(model, x, batch_size).argmax(-1).numpy()


def evaluate(model, x, y) -> dict[str, float]:
    """Accuracy and macro-F1 (``sklearn.metrics``) on ``(x, y)``; puts a torch model in eval mode."""
    from sklearn.metrics import accuracy_score, f1_score

    y = _labels(y).cpu().numpy()
    if isinstance(x, (np.ndarray, torch.Tensor)) and len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    pred = predict(model, x)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, average="macro")),
    }
