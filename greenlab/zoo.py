"""Trained reference models: trained once per machine, cached, shared by lessons and graders.

    from greenlab import zoo
    base = zoo.load("cnn128")        # a fresh copy each call, on the CPU, in eval mode
    zoo.card("cnn128").accuracy      # its test accuracy, recipe and training bill, from the cache

``cnn128`` is the 128-channel MNIST-1D CNN (``gl.models.cnn1d(channels=128)``, 105,738 parameters)
that lessons 02 and 03 train, with lesson 02's recipe (:data:`RECIPES`): ``torch.manual_seed(0)``
before building it, then Adam for 1,000 steps at lr 1e-2 and 500 at lr 1e-3, batch 128, each phase
with a ±3-sample random shift (``gl.data.shift_augment(3, seed=s)``) and batch order seeded by the
same ``s`` (0, then 1); on the CPU with 2 threads. Test accuracy 0.981 (lesson 03's 1,000 steps at
3e-3 reach 0.963). About 7 s on an idle 2-core machine, once.

``cnn32-h256`` is lesson 05's dense model (``gl.models.cnn1d(channels=32, hidden=256)``, 50,186
parameters, 82 % of them in ``fc``): 3,000 steps at lr 1e-2 (seed 0), then 500 at 1e-3 (seed 1),
the same shift and batch, on 1 thread. Test accuracy 0.978.

The cache is one file per model and recipe under ``greenlab.data.cache_dir()``
(``zoo-<name>-<key>.pt``); the key hashes the name, the recipe and the torch version, so changing
either trains anew. A damaged file, or one whose contents do not match its key, is rebuilt. Files
are read with ``torch.load(weights_only=True)``: tensors and plain values only, never code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass
from pathlib import Path

from ._internal.atomic import replacing
from ._internal.validate import at_least, positive

__all__ = ["load", "card", "Card", "Recipe", "Phase", "RECIPES", "NAMES", "cache_path"]

FORMAT = 1  # bump when the cached file's layout changes


@dataclass(frozen=True)
class Phase:
    """One training phase: ``steps`` Adam steps at ``lr``; ``seed`` seeds batch order and shifts."""

    steps: int
    lr: float
    seed: int

    def __post_init__(self) -> None:
        positive("steps", self.steps)
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real):
            raise TypeError(f"lr must be a number, got {type(self.lr).__name__}")
        if not 0 < self.lr < 1e3:
            raise ValueError(f"lr must be in (0, 1000), got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))  # 1 and 1.0 are one recipe (one key)
        at_least("seed", self.seed, 0)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a reference model's weights (and so its cache key)."""

    channels: int = 128
    init_seed: int = 0
    phases: tuple[Phase, ...] = (Phase(1000, 1e-2, 0), Phase(500, 1e-3, 1))
    batch_size: int = 128
    max_shift: int = 3
    threads: int = 2
    dataset: str = "mnist1d"
    hidden: int | None = None  # width of cnn1d's hidden fully connected layer; None: none

    def __post_init__(self) -> None:
        for name in ("channels", "batch_size", "threads"):
            positive(name, getattr(self, name))
        for name in ("init_seed", "max_shift"):
            at_least(name, getattr(self, name), 0)
        if self.hidden is not None:
            positive("hidden", self.hidden)
        if not isinstance(self.phases, tuple) or not all(isinstance(p, Phase) for p in self.phases):
            raise TypeError(f"phases must be a tuple of Phase, got {self.phases!r}")
        if not self.phases:
            raise ValueError("phases must hold at least one Phase, got ()")
        if self.dataset != "mnist1d":
            raise ValueError(f"dataset must be 'mnist1d' (the CNN reads 40-sample signals), "
                             f"got {self.dataset!r}")

    def as_dict(self) -> dict:
        """The recipe as plain values; ``hidden`` only when set, so recipes that predate it keep
        their cache keys."""
        out = dataclasses.asdict(self)
        if out["hidden"] is None:
            del out["hidden"]
        return out


RECIPES: dict[str, Recipe] = {
    "cnn128": Recipe(),
    "cnn32-h256": Recipe(channels=32, hidden=256, threads=1,
                         phases=(Phase(3000, 1e-2, 0), Phase(500, 1e-3, 1))),
}
NAMES = tuple(RECIPES)


@dataclass(frozen=True)
class Card:
    """What a cached reference model is: its recipe, test scores and what training it cost."""

    name: str
    recipe: dict
    accuracy: float
    f1: float
    params: int
    train_time_s: float
    train_energy_j: float
    energy_kind: str
    energy_source: str
    torch_version: str
    path: Path


def _recipe(name: str, recipe: Recipe | None) -> Recipe:
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name not in RECIPES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if recipe is None:
        return RECIPES[name]
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a greenlab.zoo.Recipe, got {type(recipe).__name__}")
    return recipe


def _identity(name: str, recipe: Recipe) -> dict:
    import torch

    return {"format": FORMAT, "name": name, "recipe": recipe.as_dict(),
            "torch": str(torch.__version__)}  # a str subclass weights_only refuses


def cache_path(name: str = "cnn128", recipe: Recipe | None = None) -> Path:
    """The cache file of ``name`` trained with ``recipe`` (default: its entry in :data:`RECIPES`)."""
    from .data import cache_dir

    identity = _identity(name, _recipe(name, recipe))
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"zoo-{name}-{key}.pt"


def _build(recipe: Recipe):
    """The untrained model, initialised from ``recipe.init_seed`` (the caller's RNG untouched)."""
    import torch

    from .models import cnn1d

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.init_seed)
        return cnn1d(channels=recipe.channels, hidden=recipe.hidden)


def _train(name: str, recipe: Recipe) -> dict:
    """Train ``recipe`` from scratch: the cache entry (state_dict and meta). Leaves the caller's
    torch RNG state and thread count as they were."""
    import torch

    from .data import load as load_data
    from .data import shift_augment
    from .meters import measure
    from .profile import count_params
    from .train import evaluate, fit

    data = load_data(recipe.dataset)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(recipe.threads)
        model = _build(recipe)
        with measure(f"zoo: train {name}") as m:  # fit and shift_augment use their own RNGs
            for p in recipe.phases:
                fit(model, data.x_train, data.y_train, steps=p.steps, lr=p.lr,
                    batch_size=recipe.batch_size, seed=p.seed, device="cpu", progress=False,
                    augment=shift_augment(recipe.max_shift, seed=p.seed))
    finally:
        torch.set_num_threads(threads)
    scores = evaluate(model, data.x_test, data.y_test)
    meta = {**_identity(name, recipe), "accuracy": scores["accuracy"], "f1": scores["f1"],
            "params": int(count_params(model)), "train_time_s": float(m.time_s),
            "train_energy_j": float(m.energy_j) if m.energy_j is not None else float("nan"),
            "energy_kind": str(m.kind), "energy_source": str(m.source)}
    return {"state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "meta": meta}


def _read(path: Path, name: str, recipe: Recipe) -> dict | None:
    """The cache entry at ``path`` if it is whole and is the one its key names, else None."""
    import pickle
    import zipfile

    import torch

    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("meta"), dict):
        return None
    meta, state = entry["meta"], entry.get("state_dict")
    if {k: meta.get(k) for k in ("format", "name", "recipe", "torch")} != _identity(name, recipe):
        return None
    expected = _build(recipe).state_dict()
    if not isinstance(state, dict) or set(state) != set(expected) or any(
            not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape
            or state[k].dtype != v.dtype or not torch.isfinite(state[k]).all()
            for k, v in expected.items()):
        return None
    return entry


def _entry(name: str, recipe: Recipe | None) -> tuple[dict, Path]:
    import torch

    recipe = _recipe(name, recipe)
    path = cache_path(name, recipe)
    entry = _read(path, name, recipe) if path.exists() else None
    if entry is None:  # missing, damaged or not what the key promises: train and (re)write
        entry = _train(name, recipe)
        with replacing(path) as tmp:  # atomic: two kernels may train at once
            torch.save(entry, tmp)
    return entry, path


def load(name: str = "cnn128", recipe: Recipe | None = None):
    """A trained copy of reference model ``name`` (see :data:`NAMES`), on the CPU, in eval mode.

    Trains it on first use (``recipe``, default ``RECIPES[name]``) and caches it; later calls read
    the cache. Every call returns a new model: changing it changes neither the cache nor other
    copies. The caller's torch RNG state is the same after a cache hit as after training.
    """
    entry, _ = _entry(name, recipe)
    model = _build(_recipe(name, recipe))
    model.load_state_dict(entry["state_dict"])
    return model.eval()


def card(name: str = "cnn128", recipe: Recipe | None = None) -> Card:
    """The :class:`Card` of reference model ``name``: recipe, test accuracy and macro-F1, and the
    time and energy its one training took (trains it first if it is not cached)."""
    entry, path = _entry(name, recipe)
    m = entry["meta"]
    return Card(name=name, recipe=m["recipe"], accuracy=m["accuracy"], f1=m["f1"],
                params=m["params"], train_time_s=m["train_time_s"],
                train_energy_j=m["train_energy_j"], energy_kind=m["energy_kind"],
                energy_source=m["energy_source"], torch_version=m["torch"], path=path)
