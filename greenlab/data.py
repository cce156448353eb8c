"""The course's shared datasets, offline and deterministic.

* ``mnist1d``       MNIST-1D (Greydanus 2020) generated locally by the ``mnist1d`` package: its
  default 4,000 / 1,000 split of 40-sample signals, 10 classes. Never downloaded; cached as ``.npz``.
* ``digits``        scikit-learn's bundled 8x8 digits (1,797 images), scaled to [0, 1].
* ``breast_cancer`` scikit-learn's bundled Wisconsin breast cancer set (569 x 30), standardized
  with statistics of the training split only.
"""

from __future__ import annotations

import hashlib
import os
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._internal.atomic import replacing
from ._internal.validate import at_least, integer, positive

__all__ = ["Dataset", "load", "mnist1d_extra", "to_tf_dataset", "shift_augment", "NAMES"]

NAMES = ("mnist1d", "digits", "breast_cancer")


@dataclass(frozen=True)
class Dataset:
    """Arrays of one dataset split into train and test (float32 features, int64 labels)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: train {self.x_train.shape}, test {self.x_test.shape}, "
            f"{self.n_classes} classes)"
        )


def cache_dir() -> Path:
    """Where generated data is cached: ``GREENLAB_CACHE`` or ``~/.cache/greenlab``."""
    return Path(os.environ.get("GREENLAB_CACHE", Path.home() / ".cache" / "greenlab"))


def _mnist1d_arrays(num_samples: int, seed: int, train_split: float) -> dict[str, np.ndarray]:
    """Generate MNIST-1D with the package's own generator, keeping the caller's RNG state."""
    key = hashlib.sha1(f"mnist1d-{num_samples}-{seed}-{train_split}".encode()).hexdigest()[:12]
    path = cache_dir() / f"mnist1d-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # a damaged cache (truncated, empty, CRC error) is rebuilt
    import mnist1d.data  # imported here: it costs ~1 s and reseeds global RNGs

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        args = mnist1d.data.get_dataset_args()
        args.num_samples, args.seed, args.train_split = num_samples, seed, train_split
        d = mnist1d.data.make_dataset(args)  # offline; get_dataset() would try a download
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = {
        "x_train": d["x"].astype(np.float32),
        "y_train": d["y"].astype(np.int64),
        "x_test": d["x_test"].astype(np.float32),
        "y_test": d["y_test"].astype(np.int64),
    }
    with replacing(path) as tmp:  # atomic: two kernels may generate at once
        np.savez(tmp, **arrays)
    return arrays


def load(name: str = "mnist1d") -> Dataset:
    """Load one of :data:`NAMES`. Same arrays on every call and every machine.

    >>> load("digits").x_train.shape
    (1347, 64)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name == "mnist1d":
        a = _mnist1d_arrays(num_samples=5000, seed=42, train_split=0.8)
        return Dataset("mnist1d", **a, n_classes=10,
                       source="mnist1d package, make_dataset(default args), seed 42, generated")
    if name in ("digits", "breast_cancer"):
        from sklearn import datasets
        from sklearn.model_selection import train_test_split

        bunch = getattr(datasets, f"load_{name}")()
        x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
        if name == "digits":
            x_tr, x_te = x_tr / 16.0, x_te / 16.0
        else:
            mean, std = x_tr.mean(0), x_tr.std(0) + 1e-8
            x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
        return Dataset(name, x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te,
                       n_classes=int(y.max() + 1),
                       source=f"scikit-learn bundled load_{name}(), stratified 75/25 split, seed 0")
    raise ValueError(f"name must be one of {NAMES}, got {name!r}")


def mnist1d_extra(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh MNIST-1D samples from the same generator (another seed): never in the course split.

    Useful as unlabelled data (distillation) or a larger training set.
    """
    n, seed = integer("n", n), integer("seed", seed, minimum=0)
    if not 10 <= n <= 200_000:
        raise ValueError(f"n must be in [10, 200000], got {n}")
    if seed == 42:
        raise ValueError("seed 42 generates the course split itself; pick another seed")
    a = _mnist1d_arrays(num_samples=n, seed=seed, train_split=1.0)
    return a["x_train"], a["y_train"]


def shift_augment(max_shift: int = 3, seed: int | None = None):
    """A batch augmentation for 1-D signals: roll each sample by a random shift in ±max_shift."""
    import torch

    max_shift = at_least("max_shift", max_shift, 0)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None

    def augment(x: torch.Tensor) -> torch.Tensor:
        if max_shift == 0:
            return x
        shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=gen)
        idx = (torch.arange(x.shape[-1]).unsqueeze(0) - shifts.unsqueeze(1)) % x.shape[-1]
        idx = idx.to(x.device).view(x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1])
        return torch.gather(x, -1, idx.expand_as(x))

    return augment


def _check_xy(x, y) -> None:
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError("x and y must be arrays (numpy or torch)")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")


def to_tf_dataset(x, y, batch_size: int = 128, shuffle: bool = True, seed: int = 0):
    """The same arrays as a batched ``tf.data.Dataset`` (imports TensorFlow on first use)."""
    from . import tf as gltf

    _check_xy(x, y)
    positive("batch_size", batch_size)
    tf = gltf.import_tf()
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), np.asarray(y, np.int64)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)
