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


def _as_tensor(x, dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    if isinstance(x, np.ndarray):
        return torch.as_tensor(x, dtype=dtype)
    raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")


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
        x, y: training arrays (numpy or torch); ``y`` holds class indices.
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
    xt, yt = _as_tensor(x, torch.float32), _as_tensor(y, torch.long)
    if len(xt) != len(yt):
        raise ValueError(f"x and y must have the same length, got {len(xt)} and {len(yt)}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("log_every", log_every)):
        positive(name, value)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
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
    model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    xt = _as_tensor(x, torch.float32)
    return torch.cat([model(xt[i:i + batch_size].to(dev)).cpu()
                      for i in range(0, len(xt), batch_size)])


def predict(model, x, batch_size: int = 1024) -> np.ndarray:
    """Class predictions for ``x`` from a torch module (in eval mode) or a scikit-learn model."""
    if hasattr(model, "predict") and not isinstance(model, nn.Module):
        return np.asarray(model.predict(np.asarray(x).reshape(len(x), -1)))
    return logits(model, x, batch_size).argmax(-1).numpy()


def evaluate(model, x, y) -> dict[str, float]:
    """Accuracy and macro-F1 (``sklearn.metrics``) on ``(x, y)``; puts a torch model in eval mode."""
    from sklearn.metrics import accuracy_score, f1_score

    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    pred = predict(model, x)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, average="macro")),
    }
