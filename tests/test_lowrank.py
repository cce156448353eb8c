"""greenlab.techniques.lowrank: truncated-SVD factorization of Linear and Conv1d layers."""

import numpy as np
import pytest
import torch
from torch import nn

from greenlab.techniques import lowrank
from greenlab.techniques.lowrank import (
    Factorized,
    choose_ranks,
    factorize_conv1d,
    factorize_linear,
    factorize_model,
    rank_for_energy,
    ranks_of,
    truncated_svd,
)


def _matrix_with(singular_values, m=7, seed=0) -> torch.Tensor:
    """An m x n matrix (n = len(singular_values)) with exactly these singular values."""
    g = torch.Generator().manual_seed(seed)
    n = len(singular_values)
    u, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ v.T


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 8, 5, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(8, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 19, 64), nn.ReLU(), nn.Linear(64, 10))


def test_truncated_svd_is_eckart_young_optimal():
    w = _matrix_with([5.0, 4.0, 3.0, 2.0, 1.0])
    a, b = truncated_svd(w, 3)
    assert a.shape == (7, 3) and b.shape == (3, 5) and a.dtype == w.dtype
    err = torch.linalg.matrix_norm(w - a @ b) ** 2
    assert err.item() == pytest.approx(2.0**2 + 1.0**2)  # the discarded sigma^2
    assert torch.linalg.matrix_rank(a @ b).item() == 3
    # numpy's LAPACK SVD gives the same approximation
    u, s, vh = np.linalg.svd(w.numpy(), full_matrices=False)
    np.testing.assert_allclose((a @ b).numpy(), u[:, :3] * s[:3] @ vh[:3], atol=1e-12)


def test_factorize_linear_full_rank_is_exact_and_truncated_is_optimal():
    torch.manual_seed(0)
    layer = nn.Linear(12, 9)
    x = torch.randn(5, 12)
    full = factorize_linear(layer, 9)
    assert isinstance(full, nn.Sequential) and isinstance(full, Factorized)
    assert full[0].bias is None and full[1].bias is not None
    torch.testing.assert_close(full(x), layer(x), atol=1e-5, rtol=1e-5)
    small = factorize_linear(layer, 4)
    assert [tuple(m.weight.shape) for m in small] == [(4, 12), (9, 4)]
    w_r = small[1].weight @ small[0].weight
    s = torch.linalg.svdvals(layer.weight.detach())
    err = torch.linalg.matrix_norm(layer.weight.detach() - w_r) ** 2
    assert err.item() == pytest.approx(float((s[4:] ** 2).sum()), rel=1e-4)
    no_bias = factorize_linear(nn.Linear(6, 6, bias=False), 2)
    assert no_bias[1].bias is None


def test_factorize_conv1d_keeps_geometry_and_is_exact_at_full_rank():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2)
    x = torch.randn(2, 4, 21)
    full = factorize_conv1d(conv, 6)  # out x (in*k) = 6 x 12: rank 6 is exact
    torch.testing.assert_close(full(x), conv(x), atol=1e-5, rtol=1e-5)
    small = factorize_conv1d(conv, 2)
    assert small(x).shape == conv(x).shape
    assert small[0].kernel_size == (3,) and small[0].stride == (2,) and small[1].kernel_size == (1,)
    assert sum(p.numel() for p in small.parameters()) == 2 * 12 + 6 * 2 + 6


def test_rank_for_energy():
    s = torch.tensor([3.0, 2.0, 1.0, 1.0, 1.0])  # sigma^2: 9, 4, 1, 1, 1 of 16
    assert rank_for_energy(s, 9 / 16) == 1
    assert rank_for_energy(s, 13 / 16) == 2  # exactly reached: no extra rank
    assert rank_for_energy(s, 0.82) == 3
    assert rank_for_energy(s, 1.0) == 5
    w = _matrix_with([3.0, 2.0, 1.0, 1.0, 1.0])
    assert rank_for_energy(w, 0.82) == 3
    assert rank_for_energy(nn.Linear(5, 7), 1.0) == 5
    assert rank_for_energy(torch.zeros(4, 3), 0.9) == 1


def test_factorize_model_by_rank_dict_energy_and_int():
    net = _net()
    x = torch.randn(3, 1, 40)
    small = factorize_model(net, ranks={"5": 8})
    assert isinstance(net[5], nn.Linear), "the original must be untouched"
    assert ranks_of(small) == {"5": 8}
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters())
    exact = factorize_model(net, ranks={"5": 64, "2": 16})
    torch.testing.assert_close(exact(x), net(x), atol=1e-5, rtol=1e-5)
    # an int rank only touches layers where it saves weights (not the 8 x 5 first conv at rank 6)
    assert set(ranks_of(factorize_model(net, ranks=6))) == {"2", "5", "7"}
    # named layers are factorized as asked, even where it does not save weights
    assert ranks_of(factorize_model(net, ranks=4, layers=["0"])) == {"0": 4}
    planned = choose_ranks(net, 0.9)
    assert ranks_of(factorize_model(net, energy=0.9)) == planned
    once = factorize_model(net, ranks={"7": 4})
    assert once is not net and isinstance(net[7], nn.Linear) and isinstance(once[7], Factorized)
    # a factorized model can be factorized again without touching the inner layers
    assert ranks_of(factorize_model(once, ranks={"5": 4})) == {"5": 4, "7": 4}
    assert ranks_of(once) == {"7": 4}


def test_factorizing_never_changes_the_model_or_layer_it_is_given():
    from greenlab.techniques import prune as gp

    net = gp.global_magnitude(_net(), 0.5)  # pruned, then a forward pass with grad:
    net(torch.randn(2, 1, 40)).sum().backward()  # its weights are non-leaf tensors now
    state = {k: v.clone() for k, v in net.state_dict().items()}
    training = net.training
    for call in (lambda: factorize_model(net, ranks={"5": 8}), lambda: factorize_model(net, energy=0.9),
                 lambda: factorize_linear(net[5], 8), lambda: factorize_conv1d(net[2], 4)):
        assert call() is not net
    now = net.state_dict()
    assert list(now) == list(state) and all(torch.equal(now[k], v) for k, v in state.items())
    assert net.training == training and isinstance(net[5], nn.Linear)
    with pytest.raises(TypeError, match="inplace"):  # no in-place mode: chaining needs copies
        factorize_model(net, ranks=4, inplace=True)


@pytest.mark.parametrize("call, error, text", [
    (lambda: factorize_linear(nn.Conv1d(1, 2, 3), 1), TypeError, "torch.nn.Linear"),
    (lambda: factorize_linear(nn.Linear(4, 3), 4), ValueError, "rank must be in [1, 3]"),
    (lambda: factorize_linear(nn.Linear(4, 3), 0), ValueError, "rank must be in [1, 3]"),
    (lambda: factorize_linear(nn.Linear(4, 3), 2.0), TypeError, "rank must be an int"),
    (lambda: factorize_conv1d(nn.Linear(4, 3), 1), TypeError, "torch.nn.Conv1d"),
    (lambda: factorize_conv1d(nn.Conv1d(4, 4, 3, groups=2), 1), ValueError, "groups=1"),
    (lambda: rank_for_energy(torch.ones(3, 3), 0.0), ValueError, "fraction must be a number in (0, 1]"),
    (lambda: rank_for_energy(torch.ones(3, 3), 1.5), ValueError, "fraction must be a number in (0, 1]"),
    (lambda: rank_for_energy(torch.ones(3, 3), "0.9"), TypeError, "fraction must be a number"),
    (lambda: rank_for_energy([1.0, 2.0], 0.9), TypeError, "weight must be a torch tensor"),
    (lambda: rank_for_energy(torch.tensor([1.0, -1.0]), 0.9), ValueError, "singular values"),
    (lambda: truncated_svd(torch.ones(3), 1), ValueError, ">= 2 dimensions"),
    (lambda: factorize_model(_net()), ValueError, "exactly one of"),
    (lambda: factorize_model(_net(), ranks=4, energy=0.9), ValueError, "exactly one of"),
    (lambda: factorize_model(_net(), ranks={"fc": 4}), ValueError, "factorizable layers are"),
    (lambda: factorize_model(_net(), ranks={"5": 65}), ValueError, "rank must be in [1, 64]"),
    (lambda: factorize_model(_net(), ranks=6, layers=["0"]), ValueError, "rank must be in [1, 5]"),
    (lambda: factorize_model(_net(), ranks=0), ValueError, "ranks must be >= 1"),
    (lambda: factorize_model(_net(), ranks="4"), TypeError, "ranks must be an int or a dict"),
    (lambda: factorize_model(_net(), ranks={"5": 4}, layers=["5"]), ValueError, "layers="),
    (lambda: factorize_model(_net(), ranks=4, layers="5"), TypeError, "list of layer names"),
    (lambda: factorize_model("net", ranks=4), TypeError, "torch.nn.Module"),
    (lambda: ranks_of(None), TypeError, "torch.nn.Module"),
])
def test_errors_name_the_argument(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_public_names():
    assert set(lowrank.__all__) <= set(dir(lowrank))
