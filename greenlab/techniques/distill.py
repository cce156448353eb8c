"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a teacher's logits.

The student matches the teacher's *softened* class probabilities ``softmax(logits / T)`` as well as
(optionally) the true labels::

    loss = alpha * T**2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student_logits, labels)

The ``T**2`` factor keeps the soft term's gradients the same size as ``T`` changes (they scale as
``1 / T**2``). Samples labelled ``-1`` are *unlabelled*: they contribute the soft term only, which is
what lets a teacher pass on what it knows about data nobody labelled.

Two ways to feed :func:`greenlab.fit`:

* ``distill_loss_fn(teacher, T, alpha)`` runs the teacher on every batch (consistent with any
  augmentation, costs one teacher forward pass per step);
* ``distill_loss_fn(logits, T, alpha, labels=labels)`` looks precomputed teacher logits up by row:
  train on ``y = np.arange(n)`` (row indices) -- one teacher pass over the data in all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._internal.validate import finite_values, fraction, module, number, positive
from ..models import clone
from ..train import logits

__all__ = ["UNLABELLED", "soft_targets", "kd_loss", "distill_loss_fn", "teacher_logits",
           "gap_recovered"]

UNLABELLED = -1  # the label of a sample that has none: soft (teacher) loss only


def _check_T(T) -> float:
    return number("T", T, 0, low_open=True)


def _check_alpha(alpha) -> float:
    return fraction("alpha", alpha)  # the weight of the soft loss


def _logits(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if value.dim() != 2 or not value.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape (batch, classes), "
                         f"got {value.dtype} of shape {tuple(value.shape)}")
    finite_values(name, value.detach())
    return value


def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Class probabilities softened by temperature ``T``: ``softmax(logits / T)`` over the last axis."""
    return F.softmax(_logits("logits", logits) / _check_T(T), dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
            T: float = 2.0, alpha: float = 0.7) -> torch.Tensor:
    """Hinton's distillation loss, averaged over the batch.

    Args:
        student_logits: ``(N, C)`` raw scores of the student (gradients flow through them).
        teacher_logits: ``(N, C)`` raw scores of the teacher (treated as constants).
        labels: ``(N,)`` class indices, ``-1`` (:data:`UNLABELLED`) for samples without a label;
            ``None`` means no sample is labelled.
        T: temperature (> 0) applied to both sets of logits in the soft term.
        alpha: weight of the soft term in [0, 1]; the label term gets ``1 - alpha``.
    Returns:
        A scalar: ``alpha * T**2 * KL(teacher || student)`` (mean over all samples) plus
        ``(1 - alpha) * cross-entropy`` (mean over the labelled samples; 0 if there are none).
    """
    _logits("student_logits", student_logits)
    _logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    T, alpha = _check_T(T), _check_alpha(alpha)
    n, c = student_logits.shape
    if n == 0:
        raise ValueError("student_logits must hold at least one sample, got an empty batch")
    teacher_logits = teacher_logits.detach()
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1),
                    F.log_softmax(teacher_logits / T, dim=-1),
                    reduction="batchmean", log_target=True) * (T * T)
    if labels is None:
        labels = torch.full((n,), UNLABELLED, dtype=torch.long, device=student_logits.device)
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dim() != 1:
        raise TypeError(f"labels must be a 1-D integer tensor of class indices (-1 = unlabelled), "
                        f"got {getattr(labels, 'dtype', type(labels).__name__)}")
    if len(labels) != n:
        raise ValueError(f"labels must have one entry per sample ({n}), got {len(labels)}")
    low, high = (int(v) for v in labels.aminmax())
    if low < UNLABELLED or high >= c:
        raise ValueError(f"labels must be class indices in [0, {c}) or -1 (unlabelled), "
                         f"got values in [{low}, {high}]")
    if alpha == 1.0 or high == UNLABELLED:  # nothing labelled: the soft term alone
        return alpha * soft
    hard = F.cross_entropy(student_logits, labels, ignore_index=UNLABELLED)  # mean over labelled
    return alpha * soft + (1.0 - alpha) * hard


def teacher_logits(teacher: nn.Module, x, batch_size: int = 1024) -> torch.Tensor:
    """The teacher's logits for every row of ``x`` (eval mode, no gradients), on the CPU.

    ``teacher`` is left as it was (its train / eval mode included)."""
    module(teacher, "teacher")
    positive("batch_size", batch_size)
    was_training = teacher.training
    try:
        return logits(teacher, x if isinstance(x, torch.Tensor) else np.asarray(x), batch_size)
    finally:
        teacher.train(was_training)


def distill_loss_fn(teacher: nn.Module | torch.Tensor, T: float = 2.0, alpha: float = 0.7,
                    labels=None) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``loss_fn(model, xb, yb)`` for :func:`greenlab.fit` that distills ``teacher`` into the model.

    Args:
        teacher: a torch module: a frozen copy of it (eval mode, no gradients), taken now, runs
            on every batch, and ``teacher`` itself is left as it was; ``yb`` holds the labels,
            ``-1`` for unlabelled samples. Or a precomputed ``(N, C)`` tensor of teacher
            logits (see :func:`teacher_logits`): then ``yb`` holds *row indices* into it, so train
            with ``y = np.arange(N)``, and pass the true ``labels`` (``-1`` = unlabelled).
        T: temperature (> 0).
        alpha: weight of the soft (teacher) term in [0, 1].
        labels: with precomputed logits only: ``(N,)`` labels, ``-1`` for unlabelled rows.
    """
    T, alpha = _check_T(T), _check_alpha(alpha)
    if isinstance(teacher, nn.Module):
        if labels is not None:
            raise ValueError("labels is only for precomputed logits; with a teacher module the "
                             "labels come in each batch (yb)")
        frozen = clone(teacher).eval().requires_grad_(False)

        def loss_fn(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                t = frozen(xb)
            return kd_loss(model(xb), t, yb, T, alpha)

        return loss_fn
    if isinstance(teacher, torch.Tensor):
        table = _logits("teacher", teacher).detach()
        if labels is None:
            raise ValueError("labels is required with precomputed logits: (N,) class indices, "
                             "-1 for unlabelled rows")
        label_table = torch.as_tensor(np.asarray(labels.cpu() if isinstance(labels, torch.Tensor)
                                                 else labels), dtype=torch.long)
        if label_table.shape != (len(table),):
            raise ValueError(f"labels must have one entry per row of the logits ({len(table)}), "
                             f"got shape {tuple(label_table.shape)}")

        def lookup_loss_fn(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            rows = yb.cpu()
            if bool(((rows < 0) | (rows >= len(table))).any()):
                raise ValueError(f"with precomputed logits, y must be row indices in [0, {len(table)}) "
                                 "(train with y=np.arange(n))")
            out = model(xb)
            return kd_loss(out, table[rows].to(out.device), label_table[rows].to(out.device),
                           T, alpha)

        return lookup_loss_fn
    raise TypeError(f"teacher must be a torch.nn.Module or a tensor of precomputed logits, "
                    f"got {type(teacher).__name__}")


def gap_recovered(teacher_acc: float, alone_acc: float, distilled_acc: float) -> float:
    """Fraction of the teacher-student accuracy gap that distillation closed.

    ``(distilled - alone) / (teacher - alone)``: 0 = no gain, 1 = as good as the teacher; negative
    when distillation hurt. Raises if the teacher is not better than the student alone.
    """
    values = {"teacher_acc": teacher_acc, "alone_acc": alone_acc, "distilled_acc": distilled_acc}
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
            raise TypeError(f"{name} must be a number (a fraction in [0, 1]), got {type(v).__name__}")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {v}")
    if teacher_acc <= alone_acc:
        raise ValueError(f"teacher_acc ({teacher_acc}) must exceed alone_acc ({alone_acc}): "
                         "there is no gap to recover")
    return float((distilled_acc - alone_acc) / (teacher_acc - alone_acc))
