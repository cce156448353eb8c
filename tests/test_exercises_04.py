"""Lesson 04 exercises: the master's solutions pass, realistic wrong answers fail with a useful message."""

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from exercise_helpers import (
    assert_all_pass,
    assert_fails,
    assert_passes,
    assert_public_and_hidden,
    assert_rejects,
    master_solution,
)
from exercise_helpers import stub as _stub
from torch.nn import functional as F

import greenlab as gl
from greenlab import zoo
from greenlab.techniques import distill

MASTER = Path(__file__).resolve().parents[1] / "solutions" / "04_distillation.ipynb"


def _solution(name: str):
    return master_solution(MASTER, name, {"torch": torch, "F": F})


def _passes(question: str, name: str, answer) -> None:
    assert_passes(MASTER, question, name, answer)


def _fails(question: str, name: str, answer, text: str) -> None:
    assert_fails(MASTER, question, name, answer, text)


def test_every_question_has_a_public_and_a_hidden_test():
    assert_public_and_hidden(MASTER, ["q1", "q2", "q3", "q4"])


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


def kd_all_labelled_only(s, t, y, T, alpha):  # the first edition's answer: -1 is not a class
    return alpha * T**2 * _soft(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)


def _labelled_ce(s, y, reduction="mean"):
    on = y >= 0
    return F.cross_entropy(s[on], y[on], reduction=reduction)


def kd_ce_over_all_samples(s, t, y, T, alpha):  # unlabelled rows counted as 0 in the mean
    return alpha * T**2 * _soft(s, t, T) + (1 - alpha) * _labelled_ce(s, y, "sum") / len(y)


def kd_soft_on_labelled_only(s, t, y, T, alpha):  # the teacher only speaks where labels exist
    on = y >= 0
    return alpha * T**2 * _soft(s[on], t[on], T) + (1 - alpha) * _labelled_ce(s, y)


def kd_soft_only(s, t, y, T, alpha):  # the labels are never used
    return alpha * T**2 * _soft(s, t, T)


def kd_ignore_index_unguarded(s, t, y, T, alpha):  # right, except for a batch with no label: nan
    return (alpha * T**2 * _soft(s, t, T)
            + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1))


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
    (kd_kl_on_probabilities, "kd_loss(T=4.0, alpha=0.7, every sample labelled) should be"),
    (kd_kl_summed, "kd_loss(T=4.0, alpha=0.7, every sample labelled) should be"),
    (kd_all_labelled_only, "raised IndexError"),
    (kd_ce_over_all_samples, "cross-entropy averaged over all 6 samples"),
    (kd_soft_on_labelled_only, "soft term over the labelled samples only"),
    (kd_soft_only, "the soft term alone"),
    (kd_ignore_index_unguarded, "with every label -1 is nan"),
    (_stub, "returned None: did you return the loss?"),
])
def test_q2_wrong_answers_fail(wrong, text):
    _fails("q2", "kd_loss", wrong, text)


def test_q2_crash_on_unlabelled_says_what_minus_one_means():
    _fails("q2", "kd_loss", kd_all_labelled_only, "leave it out of the cross-entropy")


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


# q4 soft or hard ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def solved():
    """The master's q4 answer cell, run as the learner's notebook runs it (3 seeds, both students),
    on 1 thread (on a busy 2-core machine 2 threads are many times slower for these students)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cells = nbformat.read(MASTER, as_version=4).cells
    context = next(c.source for c in cells if c.cell_type == "code" and "def train_student(" in c.source)
    answer = next(c.source for c in cells if c.cell_type == "code" and "def soft_and_hard(" in c.source)
    namespace = {"np": np, "torch": torch, "gl": gl, "zoo": zoo, "distill": distill}
    try:
        exec(compile(context, "<q4 context>", "exec"), namespace)
        exec(compile(answer, "<q4 answer>", "exec"), namespace)
        yield namespace
    finally:
        torch.set_num_threads(threads)


def _q4(solved, **changes) -> dict:
    names = ("hard_labels", "verdict", "results", "conclusion", "T", "ALPHA")
    return {**{n: solved[n] for n in names}, **changes}


def test_q4_solution_passes(solved):
    assert len(solved["results"]["soft"]) == len(solved["results"]["hard"]) == 3
    assert solved["conclusion"] in ("soft", "hard", "no difference")
    assert_all_pass(MASTER, "q4", _q4(solved))


def _labels_everywhere(z, labels):  # the teacher's top class replaces the true labels too
    return z.argmax(-1).numpy()


def _labels_unchanged(z, labels):  # the -1 rows are never filled in
    return np.asarray(labels)


def _labels_as_floats(z, labels):
    labels = np.asarray(labels)
    return np.where(labels == -1, z.argmax(-1).numpy(), labels).astype(float)


def _verdict_means_only(soft, hard):
    return "soft" if np.mean(soft) > np.mean(hard) else "hard"


def _verdict_first_seed(soft, hard):
    return "soft" if soft[0] > hard[0] else "hard"


def _verdict_population_sd(soft, hard):  # np.std's default ddof=0
    gain = np.mean(soft) - np.mean(hard)
    if abs(gain) <= np.std(soft) + np.std(hard):
        return "no difference"
    return "soft" if gain > 0 else "hard"


@pytest.mark.parametrize("name, wrong, text", [
    ("hard_labels", _labels_everywhere, "replaced the true labels too"),
    ("hard_labels", _labels_unchanged, "an unlabelled sample (-1) gets the teacher's top class"),
    ("hard_labels", _labels_as_floats, "integer class indices"),
    ("hard_labels", _stub, "returned None: did you return the labels?"),
    ("verdict", _verdict_means_only, "within the seed spread (1.3 points)"),
    ("verdict", _verdict_first_seed, "compare the means over every seed"),
    ("verdict", _verdict_population_sd, "use np.std(..., ddof=1)"),
    ("verdict", _stub, "returned None: did you return a string?"),
])
def test_q4_wrong_functions_fail(solved, name, wrong, text):
    # results None: the data tests fail at once, cleanly, without training anything
    assert_rejects(MASTER, "q4", _q4(solved, results=None, conclusion=None, **{name: wrong}), text)


def test_q4_a_conclusion_the_numbers_do_not_support_fails(solved):
    results = {"soft": [0.900, 0.910, 0.905], "hard": [0.900, 0.905, 0.910]}
    assert_rejects(MASTER, "q4", _q4(solved, results=results, conclusion="soft"),
                   "your numbers say 'no difference'")


def test_q4_fewer_than_three_seeds_fail(solved):
    results = {k: v[:1] for k, v in solved["results"].items()}
    assert_rejects(MASTER, "q4", _q4(solved, results=results, conclusion="no difference"),
                   "at least 3 seeds")


def test_q4_an_unfair_hard_label_control_fails(solved):
    # the "hard-label" student trained on the 4,000 labelled signals only: the student alone
    alone = solved["train_student"](solved["data"].x_train, solved["data"].y_train, seed=0)
    results = {"soft": solved["results"]["soft"], "hard": [alone, *solved["results"]["hard"][1:]]}
    conclusion = solved["verdict"](results["soft"], results["hard"])
    assert_rejects(MASTER, "q4", _q4(solved, results=results, conclusion=conclusion),
                   "your hard-label student (seed 0) scored")


def test_q4_soft_results_from_other_settings_fail(solved):
    # the numbers were trained at T=2, but the notebook's T now says 4
    assert_rejects(MASTER, "q4", _q4(solved, T=4.0), "with T=4.0 and ALPHA=0.7 it scores")
