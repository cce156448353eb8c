"""Lesson 05 exercises: the master's solutions pass, realistic wrong answers fail with a useful message."""

import math
from pathlib import Path

import pytest
import torch
from exercise_helpers import (
    answers_results,
    assert_all_pass,
    assert_fails,
    assert_passes,
    assert_rejects,
    master_solution,
)
from exercise_helpers import stub as _stub
from torch import nn

import greenlab as gl
from greenlab.techniques import lowrank

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "05_low_rank.ipynb"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: as the master grades


def _solution(name: str):
    return master_solution(MASTER, name, {"torch": torch, "nn": nn, "gl": gl, "lowrank": lowrank})


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


# q2 factorized_params, break_even_rank (the key idea: factorizing pays only below in*out/(in+out))

def _q2(factorized_params=None, break_even_rank=None) -> dict:
    return {"factorized_params": factorized_params or _solution("factorized_params"),
            "break_even_rank": break_even_rank or _solution("break_even_rank")}


def test_q2_solution_passes():
    assert_all_pass(MASTER, "q2", _q2())


def test_q2_break_even_rank_is_where_the_pair_stops_saving():
    factorized_params, break_even_rank = _solution("factorized_params"), _solution("break_even_rank")
    for i, o in ((160, 256), (64, 64), (7, 300), (1, 1)):
        r = break_even_rank(i, o)
        assert factorized_params(i, o, r) < i * o + o <= factorized_params(i, o, r + 1)


@pytest.mark.parametrize("wrong, text", [
    (lambda i, o, r: r * (i + o), "should be 10,240, got 9,984: the second Linear keeps"),
    (lambda i, o, r: r * (i + o) + r + o, "the first Linear has bias=False"),
    (lambda i, o, r: i * o + o, "should be 10,240, got 41,216"),
    (lambda i, o, r: str(r * (i + o) + o), "should return an int, got str"),
    (_stub, "returned None"),
])
def test_q2_wrong_factorized_params_fail(wrong, text):
    assert_rejects(MASTER, "q2", _q2(factorized_params=wrong), text)


@pytest.mark.parametrize("wrong, text", [
    (lambda i, o: min(i, o), "should be 98, got 160: full rank saves nothing"),
    (lambda i, o: i * o // (i + o), ("(64, 64) should be 31, got 32", "no fewer than 4,160")),
    (lambda i, o: round(i * o / (i + o)), "(64, 64) should be 31, got 32"),
    (lambda i, o: math.ceil(i * o / (i + o)), "should be 98, got 99"),
    (lambda i, o: min(i, o) // 2, "should be 98, got 80"),
    (lambda i, o: i * o / (i + o), "should return an int, got float"),
    (_stub, "returned None"),
])
def test_q2_wrong_break_even_rank_fail(wrong, text):
    assert_rejects(MASTER, "q2", _q2(break_even_rank=wrong), text)


def test_q2_break_even_rank_for_wide_layers_only_fails_the_hidden_test():
    def square_only(i, o):  # right for the public shapes, wrong for 1000 x 10
        return 98 if (i, o) == (160, 256) else (i * o - 1) // (i + o) if i == o else min(i, o) // 2

    results = answers_results(MASTER, "q2", _q2(break_even_rank=square_only))
    assert [r.passed for r in results] == [True, True, False]
    assert results[2].hidden and "break_even_rank(1000, 10) should be 9, got 5" in results[2].message


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


# q5 compress_3x (slow: each run fine-tunes the lesson's CNN; the first builds the fair baseline) ---

def _fine_tune(model, x, y, steps, lr=1e-3):
    gl.fit(model, x, y, steps=steps, lr=lr, augment=gl.data.shift_augment(3, seed=2), seed=2,
           progress=False)
    return model


def compress_no_fine_tune(model, x, y, steps):  # rank 18 straight from the SVD: 0.904
    return lowrank.factorize_model(model, ranks={"fc": 18})


def compress_rank_8_no_fine_tune(model, x, y, steps):  # 4x fewer, 0.691
    return lowrank.factorize_model(model, ranks={"fc": 8})


def compress_2_6x(model, x, y, steps):  # the lesson's rank 24: within the point, only 2.6x
    return _fine_tune(lowrank.factorize_model(model, ranks={"fc": 24}), x, y, steps)


def compress_over_budget(model, x, y, steps):  # the lesson's recipe, then 100 "free" steps
    return _fine_tune(lowrank.factorize_model(model, ranks={"fc": 18}), x, y, steps + 100)


def compress_own_budget(model, x, y, steps):  # a number of its own
    return _fine_tune(lowrank.factorize_model(model, ranks={"fc": 18}), x, y, 300)


def compress_unchanged(model, x, y, steps):
    return model


def test_q5_is_graded_public_and_hidden():
    from exercise_helpers import question_tests

    assert [hidden for hidden, _ in question_tests(MASTER)["q5"]] == [False, True]


@pytest.mark.slow
def test_q5_solution_passes():
    _passes("q5", "compress_3x", _solution("compress_3x"))


@pytest.mark.slow
def test_q5_lessons_own_recipe_passes():  # rank 18, 500 steps at lr 1e-3
    _passes("q5", "compress_3x", lambda m, x, y, steps: _fine_tune(
        lowrank.factorize_model(m, ranks={"fc": 18}), x, y, steps))


@pytest.mark.slow
@pytest.mark.parametrize("wrong, text", [
    (compress_no_fine_tune, "points lost, the target is at most 1. Fine-tune"),
    (compress_rank_8_no_fine_tune, "points lost, the target is at most 1"),
    (compress_2_6x, "19,210 parameters, 2.61x fewer than the dense 50,186"),
    (compress_over_budget, "took 600 optimizer steps, the budget is 500"),
    (compress_unchanged, "50,186 parameters, 1.00x fewer"),
    (_stub, "returned None: did you return the compressed model?"),
])
def test_q5_wrong_answers_fail(wrong, text):
    _fails("q5", "compress_3x", wrong, text)


@pytest.mark.slow
def test_q5_a_budget_of_its_own_fails_the_hidden_test():
    results = answers_results(MASTER, "q5", {"compress_3x": compress_own_budget})
    assert [(r.hidden, r.passed) for r in results] == [(False, True), (True, False)]
    assert "with steps=100, compress_3x took 300 optimizer steps" in results[1].message
