"""Pruning: zero out weights (unstructured) or remove whole channels (structured).

Unstructured pruning uses :mod:`torch.nn.utils.prune`: it keeps ``weight_orig`` and a 0/1
``weight_mask`` and multiplies them on every forward pass until :func:`make_permanent`. The zeros
shrink the *compressed* file (zlib, or a sparse format: :func:`sparse_size_bytes`) but dense CPU
kernels still multiply them, so latency does not move. Structured pruning
(:func:`channel_prune_conv1d`) builds a smaller dense model, which is faster.

Every function here leaves the model it is given as it was and returns a new one, so pruning
chains with the other techniques (lesson 13)::

    pruned = global_magnitude(model, 0.9)         # 90 % zeros overall, smallest |w| first
    pruned, history = gradual_magnitude(model, x, y, 0.9, steps=750)  # while fine-tuning
    plain = make_permanent(pruned)                # the masks baked into plain weights
    small = channel_prune_conv1d(cnn, 0.5)        # half the channels of every conv

Sparsities are fractions of zeros in [0, 1]; ``0.9`` means 90 %.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune

from .._internal.validate import at_least, fraction, integer, number, positive
from .._internal.validate import module as _check_model
from ..models import clone
from ..profile import unmasked_state

__all__ = ["PRUNABLE", "prunable", "global_magnitude", "layerwise_magnitude", "make_permanent",
           "is_pruned", "layer_sparsity", "polynomial_sparsity", "gradual_magnitude",
           "top_channels", "channel_prune_conv1d", "sparse_size_bytes"]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _check_sparsity(sparsity, name: str = "sparsity") -> float:
    return fraction(name, sparsity)


def _check_types(module_types) -> tuple[type, ...]:
    if isinstance(module_types, type):
        module_types = (module_types,)
    if (not isinstance(module_types, tuple) or not module_types
            or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in module_types)):
        raise TypeError(f"module_types must be a tuple of nn.Module classes, got {module_types!r}")
    return module_types


def prunable(model: nn.Module, module_types: tuple[type, ...] = PRUNABLE
             ) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` for every layer of ``module_types`` that has a ``weight``."""
    _check_model(model)
    module_types = _check_types(module_types)
    found = [(n, m) for n, m in model.named_modules()
             if isinstance(m, module_types) and getattr(m, "weight", None) is not None]
    if not found:
        raise ValueError(f"model has no layers of types {[t.__name__ for t in module_types]}")
    return found


def _masked(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(layer, "weight")`` for every tensor ``torch.nn.utils.prune`` masks (it keeps
    ``weight_orig`` as the parameter and ``weight_mask`` as a buffer)."""
    return [(m, name.removesuffix("_orig")) for m in model.modules()
            for name, _ in m.named_parameters(recurse=False)
            if name.endswith("_orig") and hasattr(m, name.removesuffix("_orig") + "_mask")]


def _refresh(model: nn.Module) -> nn.Module:
    """Recompute each masked ``weight`` (= ``weight_orig * weight_mask``) outside autograd.

    ``torch.nn.utils.prune`` leaves ``weight`` as a non-leaf tensor until the next forward pass, and
    ``copy.deepcopy`` refuses such modules; the pre-forward hook recomputes it anyway.
    """
    with torch.no_grad():
        for m, base in _masked(model):
            setattr(m, base, getattr(m, base + "_orig") * getattr(m, base + "_mask"))
    return model


def _counts(layer: nn.Module) -> tuple[int, int]:
    """``(zeros, masked)``: weights that are zero now, and those a prune mask already removes."""
    zeros = int((layer.weight.detach() == 0).sum())
    mask = getattr(layer, "weight_mask", None)
    return zeros, 0 if mask is None else int((mask == 0).sum())


def _extra(total: int, zeros: int, masked: int, sparsity: float, where: str) -> int:
    """How many still-unmasked weights to prune so that ``round(sparsity * total)`` are zero.

    Magnitude pruning takes weights that are already zero first, so the count is relative to the
    masked ones only.
    """
    target = round(sparsity * total)
    if target < zeros:
        raise ValueError(f"{where} already has {zeros / total:.1%} zeros, more than "
                         f"sparsity={sparsity}: pruning cannot be undone")
    return target - masked


def _global(model: nn.Module, sparsity: float, module_types) -> nn.Module:
    """:func:`global_magnitude` on ``model`` itself (``gradual_magnitude`` keeps one model and
    one optimizer across its rounds)."""
    layers = prunable(model, module_types)
    total = sum(m.weight.numel() for _, m in layers)
    zeros, masked = (sum(c) for c in zip(*(_counts(m) for _, m in layers), strict=True))
    extra = _extra(total, zeros, masked, sparsity, "model")
    # an int amount is a count of the still-unpruned weights: the target is hit exactly
    prune.global_unstructured([(m, "weight") for _, m in layers],
                              pruning_method=prune.L1Unstructured, amount=extra)
    return _refresh(model)


def global_magnitude(model: nn.Module, sparsity: float,
                     module_types: tuple[type, ...] = PRUNABLE) -> nn.Module:
    """A pruned copy: the smallest-magnitude weights across all layers together set to zero.

    Uses ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``: one threshold for the
    whole model, so layers end up with different sparsities. Given a pruned model, the copy is
    pruned further, to the new overall target.

    Args:
        model: a torch module (left unchanged); its ``module_types`` layers' ``weight`` tensors
            are pruned in the copy.
        sparsity: fraction of those weights that are zero afterwards, in [0, 1].
    Returns:
        A new model with masks (see :func:`make_permanent`); ``copy.deepcopy`` works on it.
    """
    sparsity = _check_sparsity(sparsity)
    prunable(model, module_types)
    return _global(clone(model), sparsity, module_types)


def layerwise_magnitude(model: nn.Module, sparsity: float,
                        module_types: tuple[type, ...] = PRUNABLE) -> nn.Module:
    """A pruned copy with every layer at the same ``sparsity`` (``prune.l1_unstructured`` per
    layer); ``model`` is left unchanged."""
    sparsity = _check_sparsity(sparsity)
    prunable(model, module_types)
    out = clone(model)
    for name, m in prunable(out, module_types):
        extra = _extra(m.weight.numel(), *_counts(m), sparsity, f"layer {name!r}")
        prune.l1_unstructured(m, "weight", amount=extra)
    return _refresh(out)


def is_pruned(model: nn.Module) -> bool:
    """Whether any layer still carries a ``torch.nn.utils.prune`` mask."""
    return prune.is_pruned(_check_model(model))


def make_permanent(model: nn.Module) -> nn.Module:
    """A copy with the masks baked into the weights (``prune.remove`` on every pruned layer).

    The copy is a plain module (``weight`` is a parameter again, zeros included), so it saves
    without the doubled ``weight_orig`` + ``weight_mask`` and exports cleanly. ``model`` keeps its
    masks; an unpruned model gives a plain copy.
    """
    out = clone(_check_model(model))
    for m, base in _masked(out):
        prune.remove(m, base)
    return out


def layer_sparsity(model: nn.Module, module_types: tuple[type, ...] = PRUNABLE) -> dict[str, float]:
    """``{layer name: fraction of zeros in its weight}`` for every prunable layer."""
    return {name: float((m.weight.detach() == 0).float().mean())
            for name, m in prunable(model, module_types)}


def polynomial_sparsity(step: int, final_sparsity: float, begin_step: int, end_step: int,
                        initial_sparsity: float = 0.0, power: float = 3.0) -> float:
    """The sparsity at ``step`` of the polynomial schedule of Zhu & Gupta (2017).

    ``final + (initial - final) * (1 - (step - begin) / (end - begin)) ** power``, held at
    ``initial`` before ``begin_step`` and at ``final`` after ``end_step``: the formula of
    ``tfmot.sparsity.keras.PolynomialDecay``. Prunes fast while many weights are redundant and
    slowly near the end.
    """
    final_sparsity = _check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = _check_sparsity(initial_sparsity, "initial_sparsity")
    step, begin_step, end_step = (at_least(name, value, 0) for name, value in (
        ("step", step), ("begin_step", begin_step), ("end_step", end_step)))
    if end_step <= begin_step:
        raise ValueError(f"end_step must be > begin_step, got {end_step} <= {begin_step}")
    power = number("power", power, 0, low_open=True)
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** power


def gradual_magnitude(model: nn.Module, x, y, sparsity: float, steps: int, rounds: int = 8,
                      ramp_fraction: float = 0.5, lr: float = 1e-3, batch_size: int = 128,
                      augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      seed: int = 0, module_types: tuple[type, ...] = PRUNABLE
                      ) -> tuple[nn.Module, list[dict]]:
    """Iterative prune-and-fine-tune of a copy: ``rounds`` global magnitude prunes while training.

    Prunes at steps ``0, every, 2 * every, ...`` with ``every = ramp_fraction * steps / rounds``, to
    the targets of a cubic :func:`polynomial_sparsity` schedule whose last round reaches
    ``sparsity``; the steps after the last prune fine-tune at the final sparsity. One Adam
    optimizer runs throughout. ``rounds=1`` is one-shot pruning followed by ``steps`` of
    fine-tuning. ``model`` is left unchanged.

    Returns:
        ``(pruned, history)``: the pruned, fine-tuned copy (with masks), and one row per round,
        ``{"step", "sparsity", "loss"}`` (mean training loss until the next round).
    """
    from ..train import fit

    sparsity = _check_sparsity(sparsity)
    steps, rounds = positive("steps", steps), positive("rounds", rounds)
    ramp_fraction = fraction("ramp_fraction", ramp_fraction, low_open=True)
    number("lr", lr, 0, low_open=True)
    every = int(steps * ramp_fraction) // rounds
    if rounds > 1 and every < 1:
        raise ValueError(f"rounds={rounds} needs steps >= rounds / ramp_fraction, got steps={steps}")
    prunable(model, module_types)
    out = clone(model)
    starts = [every * i for i in range(rounds)] + [steps]
    history, opt = [], None
    for i in range(rounds):
        target = polynomial_sparsity(i + 1, sparsity, 0, rounds)
        _global(out, target, module_types)
        if opt is None:  # created after the first prune: weight_orig is the parameter from now on
            opt = torch.optim.Adam(out.parameters(), lr=lr)
        n = starts[i + 1] - starts[i]
        h = fit(out, x, y, steps=n, batch_size=batch_size, optimizer=opt, augment=augment,
                seed=seed + i, progress=False, log_every=n)
        history.append({"step": starts[i], "sparsity": target, "loss": h.final_loss})
    return out, history


def top_channels(weight: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices (ascending) of the ``keep`` output channels with the largest L1 norm.

    The criterion of ``prune.ln_structured(n=1, dim=0)`` and of Li et al. (2017).
    """
    if not torch.is_tensor(weight) or weight.dim() < 2:
        raise TypeError(f"weight must be a tensor with >= 2 dimensions, got {weight!r:.60}")
    keep = integer("keep", keep, 1, weight.shape[0])
    norms = weight.detach().abs().reshape(weight.shape[0], -1).sum(1)
    return torch.sort(torch.topk(norms, keep).indices).values


def _sliced_conv(conv: nn.Conv1d, out_idx: torch.Tensor, in_idx: torch.Tensor) -> nn.Conv1d:
    """A new Conv1d with the output channels ``out_idx`` and input channels ``in_idx`` of ``conv``."""
    new = nn.Conv1d(len(in_idx), len(out_idx), conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[out_idx][:, in_idx])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[out_idx])
    return new


def _chain(model: nn.Module) -> tuple[list[str], str]:
    """The layer names of the channel-pruning protocol (``model.channel_chain()``), checked."""
    chain = getattr(model, "channel_chain", None)
    if not isinstance(model, nn.Module) or not callable(chain):
        raise TypeError("model must be a torch module with a channel_chain() method naming its conv "
                        f"chain and head (e.g. a greenlab.models.CNN1d), got {type(model).__name__}")
    convs, head = chain()
    for name in convs:
        conv = model.get_submodule(name)
        if not isinstance(conv, nn.Conv1d) or conv.groups != 1:
            raise TypeError(f"channel_chain() names {name!r}, which must be an nn.Conv1d with "
                            f"groups=1, got {conv!r}")
    if not isinstance(model.get_submodule(head), nn.Linear):
        raise TypeError(f"channel_chain() names the head {head!r}, which must be an nn.Linear")
    return list(convs), head


def _replace(model: nn.Module, name: str, layer: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, layer)


def channel_prune_conv1d(model: nn.Module, keep_fraction: float) -> nn.Module:
    """A new, smaller model keeping the strongest output channels of each conv.

    Works on any model with a ``channel_chain()`` method (e.g. :class:`greenlab.models.CNN1d`,
    see :meth:`~greenlab.models.CNN1d.channel_chain`): in every conv it names, the
    ``round(keep_fraction * channels)`` output channels with the largest L1 norm stay
    (:func:`top_channels`); the next conv loses the matching inputs, and the head the matching
    columns of the channel-major flattened features. The result is a dense model with fewer
    channels, so it is faster on any hardware; it needs a short fine-tune to recover accuracy.
    ``model`` is not changed (pruning masks, if any, are applied in the copy first).
    """
    convs, head_name = _chain(model)
    keep_fraction = number("keep_fraction", keep_fraction, 0, 1, low_open=True,
                           hint=" (0.5 keeps half)")
    small = make_permanent(model)
    first = small.get_submodule(convs[0])
    prev = torch.arange(first.in_channels, device=first.weight.device)
    for name in convs:
        conv = small.get_submodule(name)
        idx = top_channels(conv.weight, max(1, round(keep_fraction * conv.out_channels)))
        _replace(small, name, _sliced_conv(conv, idx, prev))
        channels, prev = conv.out_channels, idx
    head = small.get_submodule(head_name)
    positions = head.in_features // channels
    cols = (prev[:, None] * positions + torch.arange(positions, device=prev.device)).reshape(-1)
    new_head = nn.Linear(len(cols), head.out_features, bias=head.bias is not None)
    with torch.no_grad():
        new_head.weight.copy_(head.weight[:, cols])
        if head.bias is not None:
            new_head.bias.copy_(head.bias)
    _replace(small, head_name, new_head)
    return small.to(first.weight.device).train(model.training)


def sparse_size_bytes(model: nn.Module, min_sparsity: float = 0.5) -> int:
    """Bytes of ``torch.save`` with sparse weights stored in CSR format (int32 indices).

    Each weight with at least ``min_sparsity`` zeros is saved as a ``torch.sparse_csr`` matrix
    (``out x rest``): 4 bytes per non-zero value + 4 per column index + one row pointer per row;
    other tensors stay dense. Pruning masks are applied, not saved. Compare with
    :func:`greenlab.profile.size_bytes` (dense) and ``compressed_size_bytes`` (zlib).
    """
    _check_model(model)
    min_sparsity = _check_sparsity(min_sparsity, "min_sparsity")
    state = {}
    for name, t in unmasked_state(model).items():
        t = t.detach().cpu()
        if t.is_floating_point() and t.dim() >= 2 and t.numel() and (
                float((t == 0).float().mean()) >= min_sparsity):
            with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                csr = t.reshape(t.shape[0], -1).to_sparse_csr()
                t = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(),
                                            csr.values(), csr.shape, check_invariants=False)
        state[name] = t
    buf = io.BytesIO()
    torch.save(state, buf)
    return len(buf.getvalue())

