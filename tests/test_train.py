import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import greenlab as gl


@pytest.fixture(scope="module")
def digits():
    return gl.data.load("digits")


def test_fit_learns_and_is_reproducible(digits):
    accs, weights = [], []
    for _ in range(2):
        gl.env.seed_everything(0)
        model = gl.models.mlp(64, (32,), 10)
        hist = gl.fit(model, digits.x_train, digits.y_train, steps=300, lr=1e-2, progress=False,
                      seed=0, device="cpu")
        accs.append(gl.evaluate(model, digits.x_test, digits.y_test)["accuracy"])
        weights.append(model[1].weight.detach().clone())
    assert accs[0] > 0.9
    assert torch.equal(weights[0], weights[1])
    assert hist.loss[-1] < hist.loss[0] and len(hist.loss) == 6 and hist.time_s > 0
    assert not model.training  # fit leaves the model in eval mode


def test_custom_loss_and_augment_are_used(digits):
    calls = {"loss": 0, "aug": 0}

    def loss_fn(m, xb, yb):
        calls["loss"] += 1
        return torch.nn.functional.cross_entropy(m(xb), yb)

    def augment(x):
        calls["aug"] += 1
        return x

    gl.fit(gl.models.linear(64, 10), digits.x_train, digits.y_train, steps=7, loss_fn=loss_fn,
           augment=augment, progress=False, device="cpu")
    assert calls == {"loss": 7, "aug": 7}


def test_evaluate_sklearn_and_f1(digits):
    clf = LogisticRegression(max_iter=500).fit(digits.x_train, digits.y_train)
    res = gl.evaluate(clf, digits.x_test, digits.y_test)
    assert res["accuracy"] > 0.9 and 0 < res["f1"] <= 1
    pred = gl.train.predict(clf, digits.x_test)
    assert pred.shape == (450,)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"steps": 0}, ValueError, "steps must be a positive int"),
        ({"batch_size": -1}, ValueError, "batch_size must be a positive int"),
        ({"lr": 0}, ValueError, "lr must be a number > 0, got 0"),
    ],
)
def test_fit_bad_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        gl.fit(gl.models.linear(64, 10), digits.x_train, digits.y_train, progress=False, **kwargs)


def test_fit_bad_inputs(digits):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        gl.fit("mlp", digits.x_train, digits.y_train)
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        gl.fit(gl.models.linear(64, 10), digits.x_train.tolist(), digits.y_train)
    with pytest.raises(ValueError, match="same length"):
        gl.fit(gl.models.linear(64, 10), digits.x_train, digits.y_train[:10])
    with pytest.raises(ValueError, match="same length"):
        gl.evaluate(gl.models.linear(64, 10), digits.x_test, digits.y_test[:3])


def test_setup_and_device(monkeypatch):
    info = gl.setup(seed=3, threads=2, quiet=True)
    assert (info.seed, info.threads, torch.get_num_threads()) == (3, 2, 2)
    a = np.random.rand()
    gl.setup(seed=3, quiet=True)
    assert np.random.rand() == a
    assert gl.device() in ("cpu", "cuda")
    with pytest.raises(ValueError, match="prefer must be 'cpu' or 'cuda"):
        gl.device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            gl.device("cuda")
    with pytest.raises(TypeError, match="seed must be an int"):
        gl.setup(seed="0")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        gl.setup(threads=0)


def test_logits_batches_and_predict_is_their_argmax():
    torch.manual_seed(0)
    model = gl.models.mlp(40, (16,), 10)
    x = np.random.default_rng(0).normal(size=(50, 40)).astype(np.float32)
    out = gl.train.logits(model, x, batch_size=7)  # 8 batches, the last one short
    assert out.shape == (50, 10) and not out.requires_grad and not model.training
    with torch.no_grad():
        torch.testing.assert_close(out, model(torch.as_tensor(x)))
    np.testing.assert_array_equal(gl.train.predict(model, x), out.argmax(-1).numpy())
