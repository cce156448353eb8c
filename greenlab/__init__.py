"""greenlab: measure what energy-efficient machine learning saves.

The notebooks use this surface::

    import greenlab as gl
    gl.setup(seed=0)                       # seeds, 2 threads, device
    data = gl.data.load("mnist1d")
    model = gl.models.cnn1d()
    with gl.measure("train") as m:
        gl.fit(model, data.x_train, data.y_train)
    gl.log(lesson="01", technique="baseline", model="cnn", measurement=m,
           **gl.summarize(model, data.x_test, data.y_test))

Submodules load on first use, so ``import greenlab`` is instant and has no side effects.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("checks", "data", "env", "grade", "ledger", "meters", "models", "plots", "profile",
               "tf", "train",
               # one module per technique, reused by later lessons (13: the compression pipeline)
               "prune", "quantize", "distill", "lowrank")
_FUNCTIONS = {
    "setup": "env", "device": "env", "measure": "meters", "Meter": "meters",
    "Measurement": "meters", "fit": "train", "evaluate": "train", "summarize": "profile",
    "log": "ledger",
}

__all__ = list(_FUNCTIONS) + list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
    raise AttributeError(f"module 'greenlab' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
