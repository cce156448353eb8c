"""greenlab: measure what energy-efficient machine learning saves.

The notebooks use this surface::

    import greenlab as gl
    gl.setup(seed=0)                       # seeds, 2 threads, device
    data = gl.data.load("mnist1d")
    model = gl.models.cnn1d()
    with gl.measure("train") as m:
        gl.fit(model, data.x_train, data.y_train)
    row = gl.summarize(model, data.x_test, data.y_test)   # scores, costs, inference energy
    gl.log(lesson="01", technique="baseline", model="cnn", **row)               # inference row
    gl.log(lesson="01", technique="baseline", model="cnn", measurement=m, energy_phase="train",
           **row.as_dict(energy=False))                                        # training row
    small = gl.techniques.prune.channel_prune_conv1d(model, 0.5)  # a new model; model unchanged
    gl.compare({"baseline": model, "half the channels": small}, data.x_test, data.y_test)

Layout: core modules (``env data models train profile ledger plots tf``), ``meters``,
``techniques`` (one module per technique two or more lessons use), ``runtimes`` (ONNX Runtime,
LiteRT), ``course`` (``checks``, ``grade``). Submodules load on first use, so ``import greenlab``
is instant and has no side effects; the ``TYPE_CHECKING`` block below lets IDEs and type checkers
see the same names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> module path (relative to greenlab) of a submodule, reached as gl.<name>
_SUBMODULES = {
    "env": "env", "data": "data", "models": "models", "train": "train", "profile": "profile",
    "results": "results", "ledger": "ledger", "plots": "plots", "tf": "tf", "meters": "meters",
    "runtimes": "runtimes", "techniques": "techniques", "course": "course", "zoo": "zoo",
    "opcost": "opcost", "checks": "course.checks", "grade": "course.grade",  # gl.checks in otter test cells
}
# name -> module path of a function or class, reached as gl.<name>
_FUNCTIONS = {
    "setup": "env", "device": "env", "measure": "meters", "Meter": "meters",
    "Measurement": "meters", "fit": "train", "evaluate": "train", "summarize": "results",
    "compare": "results", "log": "ledger",
}

__all__ = [  # = _FUNCTIONS and _SUBMODULES (tests/test_package.py keeps them equal)
    "setup", "device", "measure", "Meter", "Measurement", "fit", "evaluate", "summarize",
    "compare", "log", "env", "data", "models", "train", "profile", "results", "ledger", "plots",
    "tf", "meters", "runtimes", "techniques", "course", "zoo", "opcost", "checks", "grade",
]

if TYPE_CHECKING:  # what __getattr__ returns, spelled out for static tools
    from . import (
        course,
        data,
        env,
        ledger,
        meters,
        models,
        opcost,
        plots,
        profile,
        results,
        runtimes,
        techniques,
        tf,
        train,
        zoo,
    )
    from .course import checks, grade
    from .env import device, setup
    from .ledger import log
    from .meters import Measurement, Meter, measure
    from .results import compare, summarize
    from .train import evaluate, fit


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'greenlab' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
