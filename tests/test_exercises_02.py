"""Lesson 02 exercises: the master's solutions pass, realistic wrong answers fail with their message."""

from __future__ import annotations

import warnings
from pathlib import Path

import exercise_helpers as helpers
import nbformat
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import greenlab as gl
from greenlab.techniques import prune as gp

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "02_pruning.ipynb"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: as the master grades


def _solution(name: str):
    """The solution function ``name`` from the master notebook, executed as the master runs it."""
    return helpers.master_solution(MASTER, name, {"torch": torch, "nn": nn, "prune": prune,
                                                  "gl": gl, "gp": gp})


def _passes(question: str, answers: dict) -> None:
    helpers.assert_all_pass(MASTER, question, answers)


def _fails(question: str, answers: dict, *fragments: str) -> None:
    """At least one test of ``question`` fails cleanly, and its message holds every fragment."""
    helpers.assert_rejects(MASTER, question, answers, fragments)


def _stub(*args, **kwargs):
    return None


def _ellipsis(*args, **kwargs):
    ...


def test_every_question_has_a_public_and_a_hidden_test():
    tests = helpers.question_tests(MASTER)
    assert sorted(tests) == ["q1", "q2", "q3", "q4"]
    assert [q for q, cells in tests.items() if not any(h for h, _ in cells)] == ["q1"]  # q1: public
    assert all(any(not h for h, _ in cells) for cells in tests.values())


# --------------------------------------------------------------------------- q1 prune_layer


def test_q1_solution_passes():
    _passes("q1", {"prune_layer": _solution("prune_layer")})


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
def test_q1_wrong_answers_fail(wrong, fragments):
    _fails("q1", {"prune_layer": wrong}, *fragments)


# --------------------------------------------------------------------------- q2 keep_top_channels


def test_q2_solution_passes():
    _passes("q2", {"keep_top_channels": _solution("keep_top_channels")})


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
def test_q2_wrong_answers_fail(wrong, fragments):
    _fails("q2", {"keep_top_channels": wrong}, *fragments)


# --------------------------------------------------------------------------- q3 csr_bytes, break_even


def _q3(csr_bytes=None, break_even=0.5) -> dict:
    return {"csr_bytes": csr_bytes or _solution("csr_bytes"), "break_even": break_even}


def test_q3_solution_passes():
    ns: dict = {"torch": torch}
    exec(next(c.source for c in nbformat.read(MASTER, as_version=4).cells
              if "def csr_bytes(" in c.source), ns)
    assert ns["break_even"] == 0.5
    _passes("q3", {"csr_bytes": ns["csr_bytes"], "break_even": ns["break_even"]})


def test_q3_solution_matches_torchs_own_csr_with_int32_indices():
    csr_bytes = _solution("csr_bytes")
    torch.manual_seed(0)
    w = torch.randn(7, 11) * (torch.rand(7, 11) > 0.6)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        csr = w.to_sparse_csr()
    own = sum(t.numel() * 4 for t in (csr.values(), csr.col_indices(), csr.crow_indices()))
    assert csr_bytes(w) == own


def _dense(w):
    return 4 * w.numel()


def _values_only(w):
    return 4 * int(torch.count_nonzero(w))


def _no_row_pointers(w):
    return 8 * int(torch.count_nonzero(w))


def _rows_not_rows_plus_one(w):
    return 8 * int(torch.count_nonzero(w)) + 4 * w.shape[0]


def _counts_zeros(w):
    return 8 * int((w == 0).sum()) + 4 * (w.shape[0] + 1)


def _torch_int64(w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        csr = w.detach().to_sparse_csr()
    return sum(t.numel() * t.element_size()
               for t in (csr.values(), csr.col_indices(), csr.crow_indices()))


def _numpy_on_grad_tensor(w):
    import numpy as np

    return 8 * int(np.count_nonzero(w.numpy())) + 4 * (w.shape[0] + 1)


@pytest.mark.parametrize("wrong, fragments", [
    (_dense, ("returned 72", "the dense size")),
    (_values_only, ("returned 20", "column index")),
    (_no_row_pointers, ("returned 40", "rows + 1 row pointers")),
    (_rows_not_rows_plus_one, ("returned 52", "the last marks the end")),
    (_counts_zeros, ("returned 120", "count the NON-zeros")),
    (_torch_int64, ("returned 92", "int64")),
    (_stub, ("returned None",)),
    (_ellipsis, ("returned None",)),
])
def test_q3_wrong_csr_bytes_fail(wrong, fragments):
    _fails("q3", _q3(csr_bytes=wrong), *fragments)


def test_q3_numpy_on_a_grad_tensor_fails_only_the_hidden_test():
    results = helpers.answers_results(MASTER, "q3", _q3(csr_bytes=_numpy_on_grad_tensor))
    assert [r.passed for r in results] == [True, True, False]
    assert results[2].hidden and "requires grad" in results[2].message


@pytest.mark.parametrize("wrong, fragments", [
    (50, ("a percent", "0.5")),
    (2 / 3, ("int64",)),
    (0.9, ("sparse kernels",)),
    (0.99, ("sparse kernels",)),
    (0.25, ("should be 0.5, got 0.25",)),
    (..., ("break_even is not set",)),
    (None, ("break_even is not set",)),
    ("half", ("should be a fraction, got str",)),
])
def test_q3_wrong_break_even_fails(wrong, fragments):
    _fails("q3", _q3(break_even=wrong), *fragments)


# --------------------------------------------------------------------------- q4 prune_to_90 (slow:
# each run fine-tunes the 128-channel CNN; the test's own fair baseline trains as long)

AUG = 2  # the seed of the lesson's fine-tuning batches and shifts


def _shift():
    return gl.data.shift_augment(3, seed=AUG)


def _fine_tune(model, x, y, steps):
    gl.fit(model, x, y, steps=steps, lr=1e-3, augment=_shift(), seed=AUG, progress=False)
    return model


def _oneshot_no_fine_tune(model, x, y, steps):
    return gp.global_magnitude(model, 0.9)


def _polish_after(model, x, y, steps):  # the solution, then 50 "free" extra steps
    pruned, _ = gp.gradual_magnitude(model, x, y, sparsity=0.9, steps=steps, lr=1e-3,
                                     augment=_shift(), seed=AUG)
    return _fine_tune(pruned, x, y, 50)


def _one_layer(model, x, y, steps):  # (left without fine-tuning: the check stops at the zeros)
    out = gl.models.clone(model)
    prune.l1_unstructured(out.conv2, "weight", amount=0.9)
    return out


def _channels(model, x, y, steps):  # 30 % of the channels: 90 % fewer weights, but none zero
    return gp.channel_prune_conv1d(model, 0.3)


def _ignores_steps(model, x, y, steps):  # a budget of its own
    pruned, _ = gp.gradual_magnitude(model, x, y, sparsity=0.9, steps=300, lr=1e-3,
                                     augment=_shift(), seed=AUG)
    return pruned


def _returns_history(model, x, y, steps):
    return gp.gradual_magnitude(model, x, y, sparsity=0.9, steps=steps, lr=1e-3, augment=_shift(),
                                seed=AUG)


@pytest.mark.slow
def test_q4_solution_passes():
    _passes("q4", {"prune_to_90": _solution("prune_to_90")})


@pytest.mark.slow
@pytest.mark.parametrize("wrong, fragments", [
    (_oneshot_no_fine_tune, ("points lost, the target is at most 1", "Fine-tune")),
    (_polish_after, ("took 800 optimizer steps, the budget is 750",)),
    (_one_layer, ("expected >= 90% zeros in the model's weights",)),
    (_channels, ("do not remove channels",)),
    (_returns_history, ("should return a torch model, got tuple",)),
    (_stub, ("returned None",)),
])
def test_q4_wrong_answers_fail(wrong, fragments):
    _fails("q4", {"prune_to_90": wrong}, *fragments)


@pytest.mark.slow
def test_q4_a_budget_of_its_own_fails_the_hidden_test():
    results = helpers.answers_results(MASTER, "q4", {"prune_to_90": _ignores_steps})
    assert [r.hidden for r in results] == [False, True]
    assert not results[1].passed
    assert "with steps=100, prune_to_90 took 300 optimizer steps" in results[1].message
    assert "use the steps argument" in results[1].message
