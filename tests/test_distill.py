"""greenlab.techniques.distill: Hinton's loss against a hand computation, argument checks, fit integration."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import greenlab as gl
from greenlab.techniques import distill


def _logits(seed: int = 0, n: int = 6, c: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 3, torch.randn(n, c, generator=g) * 3


def _by_hand(s, t, labels, T, alpha):
    """The loss written out sample by sample, in float64."""
    s, t = s.double(), t.double()
    p_t = torch.softmax(t / T, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / T, -1))).sum(-1).mean()
    lab = [i for i, y in enumerate(labels.tolist()) if y >= 0]
    ce = (sum(-torch.log_softmax(s[i], -1)[labels[i]] for i in lab) / len(lab)) if lab else 0.0
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
def test_kd_loss_matches_hand_computation(T, alpha):
    s, t = _logits()
    labels = torch.tensor([0, 3, -1, 2, -1, 1])
    got = distill.kd_loss(s, t, labels, T=T, alpha=alpha)
    assert torch.isclose(got.double(), torch.as_tensor(_by_hand(s, t, labels, T, alpha)),
                         rtol=1e-5, atol=1e-6)


def test_kd_loss_all_labelled_equals_standard_formula():
    s, t = _logits(1)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    T, alpha = 3.0, 0.5
    expected = (alpha * T * T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1),
                                          reduction="batchmean")
                + (1 - alpha) * F.cross_entropy(s, y))
    assert torch.isclose(distill.kd_loss(s, t, y, T, alpha), expected, rtol=1e-5)


def test_unlabelled_batch_is_soft_loss_only():
    s, t = _logits(2)
    none = torch.full((6,), -1)
    soft_only = distill.kd_loss(s, t, none, T=2.0, alpha=0.7)
    assert torch.isclose(soft_only, distill.kd_loss(s, t, None, T=2.0, alpha=0.7))
    assert torch.isclose(soft_only, 0.7 * distill.kd_loss(s, t, none, T=2.0, alpha=1.0))


def test_identical_logits_give_zero_soft_loss_and_gradients_reach_student_only():
    s, t = _logits(3)
    s = s.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    assert float(distill.kd_loss(t.detach(), t.detach(), None, T=2.0, alpha=1.0)) == pytest.approx(0, abs=1e-6)
    distill.kd_loss(s, t, torch.tensor([0, 1, 2, 3, -1, -1]), T=2.0, alpha=0.7).backward()
    assert s.grad is not None and t.grad is None


def test_t_squared_keeps_gradient_scale():
    """Without T**2 the soft gradients would shrink ~1/T**2; with it they stay comparable."""
    s, t = _logits(4, n=64, c=10)
    norms = []
    for T in (2.0, 8.0):
        x = s.clone().requires_grad_(True)
        distill.kd_loss(x, t, None, T=T, alpha=1.0).backward()
        norms.append(float(x.grad.norm()))
    assert 0.2 < norms[1] / norms[0] < 5, norms


def test_soft_targets():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    p1, p4 = distill.soft_targets(logits, 1.0), distill.soft_targets(logits, 4.0)
    assert torch.allclose(p1, torch.softmax(logits, -1))
    assert torch.allclose(p4.sum(-1), torch.ones(1))
    assert p4.max() < p1.max()  # higher temperature: softer


@pytest.mark.parametrize("kwargs, error, text", [
    ({"T": 0}, ValueError, "T must be"),
    ({"T": float("inf")}, ValueError, "T must be"),
    ({"T": "2"}, TypeError, "T must be"),
    ({"alpha": 1.5}, ValueError, r"alpha must be a number in \[0, 1\], got 1.5"),
    ({"alpha": True}, TypeError, "alpha must be"),
])
def test_kd_loss_rejects_bad_hyperparameters(kwargs, error, text):
    s, t = _logits()
    with pytest.raises(error, match=text):
        distill.kd_loss(s, t, None, **{"T": 2.0, "alpha": 0.5, **kwargs})


def test_kd_loss_rejects_bad_tensors():
    s, t = _logits()
    with pytest.raises(ValueError, match="same shape"):
        distill.kd_loss(s, t[:, :3], None)
    with pytest.raises(TypeError, match="student_logits must be a torch tensor"):
        distill.kd_loss(s.numpy(), t, None)
    with pytest.raises(ValueError, match="one entry per sample"):
        distill.kd_loss(s, t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\)"):
        distill.kd_loss(s, t, torch.tensor([0, 1, 2, 3, 4, -1]))
    with pytest.raises(TypeError, match="integer tensor"):
        distill.kd_loss(s, t, torch.zeros(6))


def _tiny_data(n=64):
    g = np.random.default_rng(0)
    x = g.normal(size=(n, 40)).astype(np.float32)
    y = (x[:, :5].sum(1) > 0).astype(np.int64)
    return x, y


def test_distill_loss_fn_with_module_and_with_precomputed_logits_agree():
    x, y = _tiny_data()
    y[::2] = -1  # half unlabelled
    torch.manual_seed(0)
    teacher = gl.models.mlp(40, (16,), 2)
    student = gl.models.mlp(40, (4,), 2)
    xb, idx = torch.as_tensor(x[:16]), torch.arange(16)
    online = distill.distill_loss_fn(teacher, T=2.0, alpha=0.7)(student, xb, torch.as_tensor(y[:16]))
    table = distill.teacher_logits(teacher, x)
    assert table.shape == (64, 2) and not table.requires_grad
    lookup = distill.distill_loss_fn(table, T=2.0, alpha=0.7, labels=y)(student, xb, idx)
    assert torch.isclose(online, lookup, rtol=1e-5)


def test_distill_helpers_leave_the_teacher_as_it_was():
    x, y = _tiny_data(32)
    torch.manual_seed(0)
    teacher = gl.models.mlp(40, (8,), 2, dropout=0.5).train()  # in train mode, dropout on
    flags = [p.requires_grad for p in teacher.parameters()]
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    distill.teacher_logits(teacher, x)
    loss_fn = distill.distill_loss_fn(teacher, T=2.0, alpha=0.7)
    student = gl.models.mlp(40, (4,), 2)
    xb, yb = torch.as_tensor(x[:8]), torch.as_tensor(y[:8])
    assert torch.equal(loss_fn(student, xb, yb), loss_fn(student, xb, yb))  # frozen copy: eval mode
    assert teacher.training and [p.requires_grad for p in teacher.parameters()] == flags
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in state.items())


def test_distill_loss_fn_trains_with_fit_on_unlabelled_data():
    x, y = _tiny_data(256)
    torch.manual_seed(0)
    teacher = gl.models.mlp(40, (32,), 2)
    gl.fit(teacher, x, y, steps=150, batch_size=64, progress=False)
    before = [p.clone() for p in teacher.parameters()]
    student = gl.models.mlp(40, (8,), 2)
    y_none = np.full_like(y, -1)  # no labels at all: the teacher is the only signal
    gl.fit(student, x, y_none, steps=150, batch_size=64, progress=False,
           loss_fn=distill.distill_loss_fn(teacher, T=2.0, alpha=0.7))
    agree = (gl.train.predict(student, x) == gl.train.predict(teacher, x)).mean()
    assert agree > 0.9, agree
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))


def test_distill_loss_fn_rejects_bad_arguments():
    teacher = gl.models.mlp(40, (4,), 2)
    with pytest.raises(TypeError, match="teacher must be"):
        distill.distill_loss_fn("teacher")
    with pytest.raises(ValueError, match="labels is required"):
        distill.distill_loss_fn(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="labels is only for precomputed"):
        distill.distill_loss_fn(teacher, labels=np.zeros(4))
    with pytest.raises(ValueError, match="one entry per row"):
        distill.distill_loss_fn(torch.zeros(4, 2), labels=np.zeros(3))
    with pytest.raises(ValueError, match="T must be"):
        distill.distill_loss_fn(teacher, T=-1)
    fn = distill.distill_loss_fn(torch.zeros(4, 2), labels=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="row indices"):
        fn(teacher, torch.zeros(2, 40), torch.tensor([0, 9]))


def test_gap_recovered():
    assert distill.gap_recovered(0.94, 0.88, 0.92) == pytest.approx(2 / 3)
    assert distill.gap_recovered(0.9, 0.8, 0.8) == 0
    assert distill.gap_recovered(0.9, 0.8, 0.75) < 0
    with pytest.raises(ValueError, match="must exceed"):
        distill.gap_recovered(0.8, 0.9, 0.85)
    with pytest.raises(ValueError, match="fraction"):
        distill.gap_recovered(94.0, 88.0, 92.0)
    with pytest.raises(TypeError, match="teacher_acc must be a number"):
        distill.gap_recovered(None, 0.8, 0.8)
