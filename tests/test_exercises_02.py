"""Lesson 02 exercises: the master's solutions pass, realistic wrong answers fail with their message."""

from __future__ import annotations

from pathlib import Path

import exercise_helpers as helpers
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "02_pruning.ipynb"


def _solution(name: str):
    """The solution function ``name`` from the master notebook, executed as the master runs it."""
    return helpers.master_solution(MASTER, name, {"torch": torch, "nn": nn, "prune": prune})


def _passes(question: str, answers: dict) -> None:
    helpers.assert_all_pass(MASTER, question, answers)


def _fails(question: str, answers: dict, *fragments: str) -> None:
    """At least one test of ``question`` fails cleanly, and its message holds every fragment."""
    helpers.assert_rejects(MASTER, question, answers, fragments)


def _stub(*args, **kwargs):
    return None


def _ellipsis(*args, **kwargs):
    ...


# --------------------------------------------------------------------------- q1 sparsity_of


def test_q1_solution_passes():
    _passes("q1", {"sparsity_of": _solution("sparsity_of")})


@pytest.mark.parametrize("wrong, fragments", [
    (lambda t: float((t != 0).sum()) / t.numel(), ("fraction of NON-zeros",)),
    (lambda t: 100 * float((t == 0).sum()) / t.numel(), ("a percent", "0.625")),
    (lambda t: int((t == 0).sum()), ("the number of zeros", "numel")),
    (lambda t: float((t == 0).sum()) / t.shape[0], ("should be 0.625, got 2.5",)),
    (_stub, ("returned None",)),
    (_ellipsis, ("returned None",)),
])
def test_q1_wrong_answers_fail(wrong, fragments):
    _fails("q1", {"sparsity_of": wrong}, *fragments)


def test_q1_numpy_on_a_grad_tensor_fails_in_the_hidden_test():
    def via_numpy(t):
        return float((t.numpy() == 0).mean())  # fails for weights that require grad

    results = helpers.answers_results(MASTER, "q1", {"sparsity_of": via_numpy})
    assert [r.passed for r in results] == [True, False]
    assert results[1].hidden and "requires grad" in results[1].message


# --------------------------------------------------------------------------- q2 prune_layer


def test_q2_solution_passes():
    _passes("q2", {"prune_layer": _solution("prune_layer")})


def _first_layer(model, layer_name, amount):
    layer = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d)))
    prune.l1_unstructured(layer, "weight", amount=amount)
    return model


def _every_layer(model, layer_name, amount):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            prune.l1_unstructured(m, "weight", amount=amount)
    return model


def _int_percent(model, layer_name, amount):
    prune.l1_unstructured(model.get_submodule(layer_name), "weight", amount=int(amount * 100))
    return model


def _float_percent(model, layer_name, amount):
    prune.l1_unstructured(model.get_submodule(layer_name), "weight", amount=amount * 100)
    return model


def _random(model, layer_name, amount):
    torch.manual_seed(0)
    prune.random_unstructured(model.get_submodule(layer_name), "weight", amount=amount)
    return model


def _no_mask(model, layer_name, amount):
    w = model.get_submodule(layer_name).weight
    k = round(amount * w.numel())
    threshold = w.detach().abs().flatten().kthvalue(k).values
    with torch.no_grad():
        w[w.abs() <= threshold] = 0
    return model


def _no_return(model, layer_name, amount):
    prune.l1_unstructured(model.get_submodule(layer_name), "weight", amount=amount)


@pytest.mark.parametrize("wrong, fragments", [
    (_first_layer, ("expected >= 50% zeros in conv2.weight, got 0.0%",)),
    (_every_layer, ("zeros in 3.weight", "too much pruned?")),
    (_int_percent, ("75 weights were pruned, not 75 %",)),
    (_float_percent, ("raised ValueError", "amount")),
    (_random, ("not the smallest in magnitude", "random_unstructured")),
    (_no_mask, ("conv2 has no pruning mask",)),
    (_no_return, ("returned None",)),
    (_stub, ("returned None",)),
])
def test_q2_wrong_answers_fail(wrong, fragments):
    _fails("q2", {"prune_layer": wrong}, *fragments)


# --------------------------------------------------------------------------- q3 keep_top_channels


def test_q3_solution_passes():
    _passes("q3", {"keep_top_channels": _solution("keep_top_channels")})


def _conv_from(conv, idx):
    small = nn.Conv1d(conv.in_channels, len(idx), conv.kernel_size, stride=conv.stride,
                      padding=conv.padding)
    with torch.no_grad():
        small.weight.copy_(conv.weight[idx])
        small.bias.copy_(conv.bias[idx])
    return small


def _first_k(conv, keep):
    return _conv_from(conv, torch.arange(keep))


def _by_l2(conv, keep):
    norms = conv.weight.detach().pow(2).sum(dim=(1, 2))
    return _conv_from(conv, torch.sort(torch.topk(norms, keep).indices).values)


def _smallest(conv, keep):
    norms = conv.weight.detach().abs().sum(dim=(1, 2))
    return _conv_from(conv, torch.sort(torch.topk(norms, keep, largest=False).indices).values)


def _unsorted(conv, keep):
    norms = conv.weight.detach().abs().sum(dim=(1, 2))
    return _conv_from(conv, torch.topk(norms, keep).indices)


def _forgets_bias(conv, keep):
    norms = conv.weight.detach().abs().sum(dim=(1, 2))
    idx = torch.sort(torch.topk(norms, keep).indices).values
    small = nn.Conv1d(conv.in_channels, keep, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding)
    with torch.no_grad():
        small.weight.copy_(conv.weight[idx])
    return small


def _mask_only(conv, keep):
    prune.ln_structured(conv, "weight", amount=conv.out_channels - keep, n=1, dim=0)
    return conv


@pytest.mark.parametrize("wrong, fragments", [
    (_first_k, ("kept channels [0, 1]", "the first `keep` channels")),
    (_by_l2, ("kept channels [1, 2]", "L2 norms, not L1")),
    (_smallest, ("kept channels [1, 3]", "the smallest norms")),
    (_unsorted, ("keep their original order [0, 2]",)),
    (_forgets_bias, ("copy the biases",)),
    (_mask_only, ("expected a conv with 2 output channels, got 4",)),
    (_stub, ("returned None",)),
])
def test_q3_wrong_answers_fail(wrong, fragments):
    _fails("q3", {"keep_top_channels": wrong}, *fragments)
