"""Low-rank factorization: replace a layer's weight by the product of two thin matrices.

A ``Linear(in, out)`` holds ``W`` (out x in). Its truncated SVD ``W ~ U_r S_r V_r^T`` (Eckart-Young:
the best rank-``r`` approximation in the Frobenius norm) becomes two layers,
``Linear(in, r, bias=False)`` then ``Linear(r, out)``: ``r * (in + out)`` weights instead of
``in * out``. A ``Conv1d`` is factorized the same way on its kernel reshaped to ``out x (in * k)``:
a conv with ``r`` output channels, then a 1x1 conv (Denton et al. 2014, Jaderberg et al. 2014).

::

    small = factorize_model(model, ranks={"fc": 24})      # a factorized copy
    small = factorize_model(model, energy=0.9)            # ranks keeping 90 % of sum(sigma^2)
    ranks_of(small)                                        # {"fc": 24}

Nothing here changes the model or layer it is given: each function returns new layers or a copy.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .._internal.validate import finite_values, fraction, integer, module
from ..models import clone

__all__ = ["Factorized", "singular_values", "truncated_svd", "rank_for_energy",
           "factorize_linear", "factorize_conv1d", "factorize_model", "choose_ranks", "ranks_of"]

FACTORIZABLE = (nn.Linear, nn.Conv1d)


class Factorized(nn.Sequential):
    """Two layers that replace one: ``(first, second)``, with the ``rank`` between them.

    An ``nn.Sequential``, so it runs, trains and saves like one; the subclass only lets
    :func:`ranks_of` find factorized layers again.
    """

    def __init__(self, first: nn.Module, second: nn.Module, rank: int):
        super().__init__(first, second)
        self.rank = rank

    def extra_repr(self) -> str:
        return f"rank={self.rank}"


def _matrix(weight) -> torch.Tensor:
    """A weight (or a layer's weight) as a 2-D float64 CPU matrix: ``out x (everything else)``."""
    if isinstance(weight, nn.Module):
        weight = getattr(weight, "weight", None)
    if not torch.is_tensor(weight):
        raise TypeError(f"weight must be a torch tensor or a layer with a weight, "
                        f"got {type(weight).__name__}")
    if weight.dim() < 2:
        raise ValueError(f"weight must have >= 2 dimensions, got shape {tuple(weight.shape)}")
    finite_values("weight", weight.detach())
    return weight.detach().to("cpu", torch.float64).reshape(weight.shape[0], -1)


def _check_rank(rank, max_rank: int, what: str) -> int:
    rank = integer("rank", rank)
    if not 1 <= rank <= max_rank:
        raise ValueError(f"rank must be in [1, {max_rank}] for {what}, got {rank}")
    return rank


def _check_fraction(value, name: str = "fraction") -> float:
    return fraction(name, value, low_open=True)


def singular_values(weight) -> torch.Tensor:
    """Singular values (descending, float64) of a weight reshaped to ``out x (in * k)``."""
    return torch.linalg.svdvals(_matrix(weight))


def truncated_svd(weight, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors ``(A, B)`` with ``A @ B`` the best rank-``rank`` approximation of ``weight``.

    ``weight`` is reshaped to ``out x (in * k)``; ``A = U_r sqrt(S_r)`` (out x r) and
    ``B = sqrt(S_r) V_r^T`` (r x in*k), so both factors have the same scale (better for fine-tuning).
    Computed in float64 on the CPU, returned in the weight's dtype and device.
    """
    w = _matrix(weight)
    _check_rank(rank, min(w.shape), f"a {w.shape[0]} x {w.shape[1]} weight")
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    a, b = u[:, :rank] * root, root[:, None] * vh[:rank]
    ref = weight.weight if isinstance(weight, nn.Module) else weight
    return a.to(ref.device, ref.dtype), b.to(ref.device, ref.dtype)


def rank_for_energy(weight, fraction: float) -> int:
    """The smallest rank whose singular values keep ``fraction`` of ``sum(sigma^2)``.

    Args:
        weight: a weight tensor (>= 2-D, reshaped to ``out x (in * k)``), a layer, or a 1-D tensor
            of singular values (in any order; NaN, inf and negative values refused).
        fraction: in (0, 1]; 1.0 gives the full rank (of the numerically non-zero spectrum).
    """
    fraction = _check_fraction(fraction)
    if torch.is_tensor(weight) and weight.dim() == 1:
        s = weight.detach().to("cpu", torch.float64)
        if len(s) == 0:
            raise ValueError("weight (singular values) must hold at least one value")
        finite_values("weight (singular values)", s)
        if (s < 0).any():
            raise ValueError("weight (singular values) must be >= 0")
        s = torch.sort(s, descending=True).values  # the rank counts the largest values first
    else:
        s = singular_values(weight)
    energy = s.pow(2)
    total = float(energy.sum())
    if total == 0:
        return 1
    kept = torch.cumsum(energy, 0) / total
    # tolerance: fraction=1.0 must not ask for rounding error beyond the last singular value
    return int(torch.searchsorted(kept, torch.tensor(fraction - 1e-12, dtype=kept.dtype))) + 1


def factorize_linear(layer: nn.Linear, rank: int) -> Factorized:
    """``Linear(in, out)`` -> ``Factorized(Linear(in, rank, bias=False), Linear(rank, out))``.

    The weights come from the truncated SVD; the bias moves to the second layer unchanged.
    New layers are returned; ``layer`` is left unchanged.
    """
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"layer must be a torch.nn.Linear, got {type(layer).__name__}")
    a, b = truncated_svd(layer.weight, rank)
    kw = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    first = nn.Linear(layer.in_features, rank, bias=False, **kw)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None, **kw)
    with torch.no_grad():
        first.weight.copy_(b)
        second.weight.copy_(a)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return Factorized(first, second, rank)


def factorize_conv1d(layer: nn.Conv1d, rank: int) -> Factorized:
    """``Conv1d(in, out, k)`` -> ``Factorized(Conv1d(in, rank, k), Conv1d(rank, out, 1))``.

    The kernel ``out x in x k`` is reshaped to ``out x (in * k)`` and factorized: the first conv
    keeps the original stride, padding and dilation with ``rank`` filters; the 1x1 conv mixes them
    into ``out`` channels and carries the bias. Grouped convolutions are not supported.
    New layers are returned; ``layer`` is left unchanged.
    """
    if not isinstance(layer, nn.Conv1d):
        raise TypeError(f"layer must be a torch.nn.Conv1d, got {type(layer).__name__}")
    if layer.groups != 1:
        raise ValueError(f"layer must have groups=1 (grouped convs are not supported), "
                         f"got groups={layer.groups}")
    a, b = truncated_svd(layer.weight, rank)
    kw = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    first = nn.Conv1d(layer.in_channels, rank, layer.kernel_size, stride=layer.stride,
                      padding=layer.padding, dilation=layer.dilation, bias=False,
                      padding_mode=layer.padding_mode, **kw)
    second = nn.Conv1d(rank, layer.out_channels, 1, bias=layer.bias is not None, **kw)
    with torch.no_grad():
        first.weight.copy_(b.reshape(rank, layer.in_channels, *layer.kernel_size))
        second.weight.copy_(a[:, :, None])
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return Factorized(first, second, rank)


def _factorize(layer: nn.Module, rank: int) -> Factorized:
    return factorize_linear(layer, rank) if isinstance(layer, nn.Linear) else factorize_conv1d(layer, rank)


def _max_rank(layer: nn.Module) -> int:
    """The rank of ``layer``'s weight seen as an ``out x (everything else)`` matrix, at most."""
    return min(layer.weight.shape[0], math.prod(layer.weight.shape[1:]))


def _saves(layer: nn.Module, rank: int) -> bool:
    """Whether a rank-``rank`` factorization has fewer weights than ``layer``."""
    out, rest = layer.weight.shape[0], math.prod(layer.weight.shape[1:])
    return rank * (rest + out) < out * rest


def _layers(model: nn.Module, names) -> dict[str, nn.Module]:
    """Named Linear/Conv1d layers of ``model`` (not those already inside a Factorized)."""
    module(model)
    done = [n + "." for n, m in model.named_modules() if isinstance(m, Factorized)]
    found = {n: m for n, m in model.named_modules()
             if isinstance(m, FACTORIZABLE) and not any(n.startswith(p) for p in done)}
    if names is None:
        return found
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError("layers must be a list of layer names (str)")
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"layers {missing} are not Linear/Conv1d layers of the model; "
                         f"factorizable layers are {list(found)}")
    return {n: found[n] for n in names}


def choose_ranks(model: nn.Module, energy: float, layers: list[str] | None = None) -> dict[str, int]:
    """Per layer, the rank keeping ``energy`` of ``sum(sigma^2)`` (:func:`rank_for_energy`).

    Without ``layers``, every Linear/Conv1d layer is considered and only those whose factorization
    at that rank has fewer weights are returned.
    """
    _check_fraction(energy, "energy")
    chosen = {}
    for name, layer in _layers(model, layers).items():
        rank = rank_for_energy(layer.weight, energy)
        if layers is not None or _saves(layer, rank):
            chosen[name] = rank
    return chosen


def factorize_model(model: nn.Module, ranks: int | dict[str, int] | None = None, *,
                    energy: float | None = None, layers: list[str] | None = None) -> nn.Module:
    """Replace Linear/Conv1d layers by their rank-``r`` :class:`Factorized` versions.

    Give exactly one of:
        ranks: ``{"fc": 24}`` factorizes exactly those layers; an int uses that rank for every
            layer in ``layers`` (default: all Linear/Conv1d layers where it saves weights).
        energy: a fraction in (0, 1]: each layer gets the rank keeping that fraction of its squared
            singular values (:func:`choose_ranks`).
    Returns a factorized copy; ``model`` is left unchanged. Fine-tune the copy afterwards.
    """
    if (ranks is None) == (energy is None):
        raise ValueError("give exactly one of ranks= (int or dict) or energy= (a fraction)")
    if energy is not None:
        plan = choose_ranks(model, energy, layers)
    elif isinstance(ranks, dict):
        if layers is not None:
            raise ValueError("layers= is only for an int rank or energy=; a ranks dict names its layers")
        found = _layers(model, list(ranks))
        plan = {n: _check_rank(r, _max_rank(found[n]), f"layer {n!r}") for n, r in ranks.items()}
    elif isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        ranks = integer("ranks", ranks, minimum=1)
        found = _layers(model, layers)
        if layers is None:  # every layer where this rank saves weights
            plan = {n: ranks for n, m in found.items() if _saves(m, ranks)}
        else:
            plan = {n: _check_rank(ranks, _max_rank(m), f"layer {n!r}") for n, m in found.items()}
    else:
        raise TypeError(f"ranks must be an int or a dict of layer name -> rank, "
                        f"got {type(ranks).__name__}")
    target = clone(model)
    for name, rank in plan.items():
        parent_name, _, child = name.rpartition(".")
        parent = target.get_submodule(parent_name) if parent_name else target
        setattr(parent, child, _factorize(target.get_submodule(name), rank))
    return target


def ranks_of(model: nn.Module) -> dict[str, int]:
    """``{layer name: rank}`` of the :class:`Factorized` layers in ``model``."""
    module(model)
    return {n: m.rank for n, m in model.named_modules() if isinstance(m, Factorized)}
