import numpy as np
import pytest
import torch

from greenlab import data


def test_mnist1d_default_split_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLAB_CACHE", str(tmp_path))
    np.random.seed(123)
    before = np.random.rand()
    np.random.seed(123)
    d = data.load("mnist1d")
    assert np.random.rand() == before  # the generator's reseeding does not leak into ours
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert set(np.unique(d.y_train)) == set(range(10)) and d.n_classes == 10
    assert list(tmp_path.glob("mnist1d-*.npz"))
    again = data.load("mnist1d")  # from the cache
    np.testing.assert_array_equal(d.x_train, again.x_train)


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLAB_CACHE", str(tmp_path))
    good = data.load("mnist1d")
    for f in tmp_path.glob("mnist1d-*.npz"):
        f.write_bytes(b"not a zip")
    np.testing.assert_array_equal(data.load("mnist1d").x_test, good.x_test)


@pytest.mark.parametrize("name, shape, classes", [("digits", (1347, 64), 10),
                                                  ("breast_cancer", (426, 30), 2)])
def test_sklearn_sets(name, shape, classes):
    d = data.load(name)
    assert d.x_train.shape == shape and d.n_classes == classes
    assert d.n_features == shape[1]
    assert len(d.x_test) + len(d.x_train) == {"digits": 1797, "breast_cancer": 569}[name]
    if name == "digits":
        assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    else:
        assert abs(d.x_train.mean()) < 1e-5  # standardized with train statistics
    assert repr(d).startswith(f"Dataset({name!r}")


def test_load_bad_names():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load("imagenet")
    with pytest.raises(TypeError, match="name must be a string"):
        data.load(3)


def test_mnist1d_extra_is_fresh_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLAB_CACHE", str(tmp_path))
    x, y = data.mnist1d_extra(200, seed=7)
    assert x.shape == (200, 40) and y.shape == (200,)
    course = data.load("mnist1d")
    assert not any((course.x_train[:50] == row).all(1).any() for row in x[:50])
    with pytest.raises(ValueError, match="seed 42"):
        data.mnist1d_extra(100, seed=42)
    with pytest.raises(ValueError, match=r"n must be in \[10, 200000\]"):
        data.mnist1d_extra(5)
    with pytest.raises(TypeError, match="n must be an int"):
        data.mnist1d_extra(10.0)


def _shift_of(row: torch.Tensor, x0: torch.Tensor) -> int | None:
    """The shift s in [-5, 4] with torch.roll(x0, s) == row, or None if row is no roll of x0."""
    return next((s for s in range(-5, 5) if torch.equal(torch.roll(x0, s), row)), None)


def test_shift_augment_rolls_each_sample_by_a_random_shift():
    x0 = torch.arange(10, dtype=torch.float32)
    x = x0.repeat(200, 1)
    out = data.shift_augment(3, seed=0)(x)
    assert out.shape == x.shape
    shifts = [_shift_of(row, x0) for row in out]
    assert None not in shifts  # every row is a roll of its sample
    assert set(shifts) == set(range(-3, 4))  # every shift in ±3 occurs, and no other
    assert 0 < shifts.count(0) < 100  # most rows move: an augmentation that does nothing fails
    assert torch.equal(data.shift_augment(3, seed=0)(x), out)  # a seed repeats the shifts
    assert not torch.equal(data.shift_augment(3, seed=1)(x), out)
    x3 = x.unsqueeze(1)  # (N, 1, L) works too, rolled along the last axis
    assert torch.equal(data.shift_augment(3, seed=0)(x3).squeeze(1), out)
    assert torch.equal(data.shift_augment(0)(x), x)
    with pytest.raises(ValueError, match="max_shift must be an int >= 0"):
        data.shift_augment(-1)


def test_removed_names_are_gone():
    assert not hasattr(data, "to_loader")


def test_tf_dataset():
    d = data.load("breast_cancer")
    ds = data.to_tf_dataset(d.x_train, d.y_train, batch_size=50, shuffle=False)
    xb, yb = next(iter(ds))
    assert tuple(xb.shape) == (50, 30)
    np.testing.assert_allclose(xb.numpy(), d.x_train[:50])
