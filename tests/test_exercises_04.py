"""Lesson 04 exercises: the master's solutions pass, realistic wrong answers fail with a useful message."""

from pathlib import Path

import pytest
import torch
from exercise_helpers import assert_fails, assert_passes, master_solution
from exercise_helpers import stub as _stub
from torch.nn import functional as F

from greenlab.techniques import distill

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "04_distillation.ipynb"


def _solution(name: str):
    return master_solution(MASTER, name, {"torch": torch, "F": F})


def _passes(question: str, name: str, answer) -> None:
    assert_passes(MASTER, question, name, answer)


def _fails(question: str, name: str, answer, text: str) -> None:
    assert_fails(MASTER, question, name, answer, text)


# q1 soft_targets ---------------------------------------------------------------------------------

def test_q1_solution_passes():
    _passes("q1", "soft_targets", _solution("soft_targets"))


def test_q1_library_answer_passes():
    _passes("q1", "soft_targets", distill.soft_targets)


@pytest.mark.parametrize("wrong, text", [
    (lambda z, T: torch.softmax(z, dim=-1), "T is ignored"),
    (lambda z, T: torch.softmax(z * T, dim=-1), "multiplied by T"),
    (lambda z, T: torch.softmax(z / T, dim=0), "over the batch axis"),
    (lambda z, T: torch.exp(z / T), "should sum to 1"),
    (lambda z, T: torch.softmax(z, dim=-1) / T, "should sum to 1"),
    (lambda z, T: torch.softmax(z / T, dim=-1)[0], "should have shape (3, 4), got (4,)"),
    (_stub, "is None: did you return it?"),
])
def test_q1_wrong_answers_fail(wrong, text):
    _fails("q1", "soft_targets", wrong, text)


# q2 kd_loss --------------------------------------------------------------------------------------

def _soft(s, t, T, swap=False):
    log_s, log_t = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    if swap:
        log_s, log_t = log_t, log_s
    return F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)


def kd_without_t_squared(s, t, y, T, alpha):
    return alpha * _soft(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)


def kd_kl_swapped(s, t, y, T, alpha):
    return alpha * T**2 * _soft(s, t, T, swap=True) + (1 - alpha) * F.cross_entropy(s, y)


def kd_alpha_swapped(s, t, y, T, alpha):
    return (1 - alpha) * T**2 * _soft(s, t, T) + alpha * F.cross_entropy(s, y)


def kd_ce_at_temperature(s, t, y, T, alpha):
    return alpha * T**2 * _soft(s, t, T) + (1 - alpha) * F.cross_entropy(s / T, y)


def kd_as_float(s, t, y, T, alpha):  # .item(): right number, but nothing to backpropagate
    return (alpha * T**2 * _soft(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)).item()


def kd_detached(s, t, y, T, alpha):
    return (alpha * T**2 * _soft(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)).detach()


def kd_kl_on_probabilities(s, t, y, T, alpha):  # F.kl_div wants log-probabilities as its input
    soft = F.kl_div(F.softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_kl_summed(s, t, y, T, alpha):  # reduction="sum": not averaged over the batch
    soft = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="sum",
                    log_target=True)
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def test_q2_solution_passes():
    _passes("q2", "kd_loss", _solution("kd_loss"))


def test_q2_library_answer_passes():
    _passes("q2", "kd_loss", lambda s, t, y, T, alpha: distill.kd_loss(s, t, y, T=T, alpha=alpha))


@pytest.mark.parametrize("wrong, text", [
    (kd_without_t_squared, "without the T**2 factor"),
    (kd_kl_swapped, "KL(student || teacher)"),
    (kd_alpha_swapped, "alpha and 1 - alpha swapped"),
    (kd_ce_at_temperature, "cross-entropy also taken at temperature T"),
    (kd_as_float, "should return a scalar torch tensor (for .backward()), got float"),
    (kd_detached, "no gradient flows from kd_loss back to student_logits"),
    (kd_kl_on_probabilities, "kd_loss(T=4.0, alpha=0.7) should be"),
    (kd_kl_summed, "kd_loss(T=4.0, alpha=0.7) should be"),
    (_stub, "kd_loss(...) returned None: did you return the loss?"),
])
def test_q2_wrong_answers_fail(wrong, text):
    _fails("q2", "kd_loss", wrong, text)


# q3 gap_recovered --------------------------------------------------------------------------------

def test_q3_solution_passes():
    _passes("q3", "gap_recovered", _solution("gap_recovered"))


def test_q3_library_answer_passes():
    _passes("q3", "gap_recovered", distill.gap_recovered)


@pytest.mark.parametrize("wrong, text", [
    (lambda t, a, d: 100 * (d - a) / (t - a), "got a percentage"),
    (lambda t, a, d: d - a, "returned the gain in accuracy"),
    (lambda t, a, d: (d - a) / (t - d), "not teacher - distilled"),
    (lambda t, a, d: max(0.0, (d - a) / (t - a)), "do not clip at 0"),
    (lambda t, a, d: d / t, "gap_recovered(0.94, 0.88, 0.92) should be 0.666667, got 0.978723"),
    (_stub, "gap_recovered(0.94, 0.88, 0.92) returned None"),
])
def test_q3_wrong_answers_fail(wrong, text):
    _fails("q3", "gap_recovered", wrong, text)
