"""Lesson 05 exercises: the master's solutions pass, realistic wrong answers fail with a useful message."""

from pathlib import Path

import pytest
import torch
from exercise_helpers import assert_fails, assert_passes, master_solution
from exercise_helpers import stub as _stub
from torch import nn

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "05_low_rank.ipynb"


def _solution(name: str):
    return master_solution(MASTER, name, {"torch": torch, "nn": nn})


def _passes(question: str, name: str, answer) -> None:
    assert_passes(MASTER, question, name, answer)


def _fails(question: str, name: str, answer, text: str) -> None:
    assert_fails(MASTER, question, name, answer, text)


# q1 low_rank_approx ------------------------------------------------------------------------------

def _svd(W):
    return torch.linalg.svd(W, full_matrices=False)


def approx_off_by_one(W, rank):
    U, S, Vh = _svd(W)
    return U[:, :rank + 1] @ torch.diag(S[:rank + 1]) @ Vh[:rank + 1]


def approx_without_s(W, rank):
    U, S, Vh = _svd(W)
    return U[:, :rank] @ Vh[:rank]


def approx_untruncated_v(W, rank):
    U, S, Vh = _svd(W)
    return U[:, :rank] @ torch.diag(S[:rank]) @ Vh


def approx_smallest(W, rank):
    U, S, Vh = _svd(W)
    return U[:, -rank:] @ torch.diag(S[-rank:]) @ Vh[-rank:]


def test_q1_solution_passes():
    _passes("q1", "low_rank_approx", _solution("low_rank_approx"))


@pytest.mark.parametrize("wrong, text", [
    (approx_off_by_one, "should have rank 3, got rank 4"),
    (approx_without_s, "should be 5 = 2^2 + 1^2"),
    (approx_untruncated_v, "raised RuntimeError"),
    (approx_smallest, "keep the largest singular values"),
    (_stub, "is None: did you return it?"),
])
def test_q1_wrong_answers_fail(wrong, text):
    _fails("q1", "low_rank_approx", wrong, text)


# q2 factorized_params ----------------------------------------------------------------------------

def test_q2_solution_passes():
    _passes("q2", "factorized_params", _solution("factorized_params"))


@pytest.mark.parametrize("wrong, text", [
    (lambda i, o, r: r * (i + o), "should be 10,240, got 9,984: the second Linear keeps"),
    (lambda i, o, r: r * (i + o) + r + o, "the first Linear has bias=False"),
    (lambda i, o, r: i * o + o, "should be 10,240, got 41,216"),
    (lambda i, o, r: str(r * (i + o) + o), "should return an int, got str"),
    (_stub, "returned None"),
])
def test_q2_wrong_answers_fail(wrong, text):
    _fails("q2", "factorized_params", wrong, text)


# q3 pick_rank ------------------------------------------------------------------------------------

def _kept(s):
    energy = s.double() ** 2
    return torch.cumsum(energy, 0) / energy.sum()


def rank_from_sigma(s, fraction):  # sum of sigma, not sigma^2
    kept = torch.cumsum(s.double(), 0) / s.double().sum()
    return int((kept < fraction).sum()) + 1


def rank_strictly_above(s, fraction):  # > instead of >=
    return int((_kept(s) <= fraction).sum()) + 1


def rank_as_index(s, fraction):  # the index of the first value reaching it, not the count
    return int((_kept(s) < fraction).sum())


def test_q3_solution_passes():
    _passes("q3", "pick_rank", _solution("pick_rank"))


@pytest.mark.parametrize("wrong, text", [
    (rank_from_sigma, "pick_rank(s, 0.5) should be 1, got 2"),
    (rank_strictly_above, "pick_rank(s, 0.8125) should be 2, got 3"),
    (rank_as_index, "pick_rank(s, 0.5) should be 1, got 0"),
    (_stub, "returned None"),
])
def test_q3_wrong_answers_fail(wrong, text):
    _fails("q3", "pick_rank", wrong, text)


# q4 factorize ------------------------------------------------------------------------------------

def _pair(layer, rank, first_w, second_w, bias=True, first_bias=False):
    first = nn.Linear(layer.in_features, rank, bias=first_bias)
    second = nn.Linear(rank, layer.out_features)
    with torch.no_grad():
        first.weight.copy_(first_w)
        second.weight.copy_(second_w)
        if bias:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize_no_bias_copy(layer, rank):
    U, S, Vh = _svd(layer.weight.detach())
    return _pair(layer, rank, torch.diag(S[:rank]) @ Vh[:rank], U[:, :rank], bias=False)


def factorize_without_s(layer, rank):
    U, S, Vh = _svd(layer.weight.detach())
    return _pair(layer, rank, Vh[:rank], U[:, :rank])


def factorize_bias_on_both(layer, rank):
    U, S, Vh = _svd(layer.weight.detach())
    return _pair(layer, rank, torch.diag(S[:rank]) @ Vh[:rank], U[:, :rank], first_bias=True)


def factorize_one_layer(layer, rank):  # the rank-r matrix in one Linear: no saving at all
    U, S, Vh = _svd(layer.weight.detach())
    out = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        out.weight.copy_(U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank])
        out.bias.copy_(layer.bias)
    return nn.Sequential(out)


def factorize_transposed(layer, rank):  # weights copied as in x out: copy_ cannot broadcast
    U, S, Vh = _svd(layer.weight.detach())
    return _pair(layer, rank, (torch.diag(S[:rank]) @ Vh[:rank]).T, U[:, :rank].T)


def test_q4_solution_passes():
    _passes("q4", "factorize", _solution("factorize"))


def test_q4_library_answer_passes():
    from greenlab.techniques.lowrank import factorize_linear

    _passes("q4", "factorize", factorize_linear)  # sqrt(S) on both sides: the same product


@pytest.mark.parametrize("wrong, text", [
    (factorize_no_bias_copy, "factorize(layer, 4)(x): "),
    (factorize_without_s, "values differ from the expected ones"),
    (factorize_bias_on_both, "expected at most 93 parameters, got 97"),
    (factorize_one_layer, "expected at most 93 parameters, got 117"),
    (factorize_transposed, "raised RuntimeError"),
    (_stub, "model is None"),
])
def test_q4_wrong_answers_fail(wrong, text):
    _fails("q4", "factorize", wrong, text)
