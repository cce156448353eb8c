"""One result contract: a row per model (:func:`summarize`) and a side-by-side table (:func:`compare`).

A :class:`Summary` row's keys are :mod:`greenlab.ledger` columns, so ``gl.log(..., **row)`` stores it.
Inference energy is measured with :func:`greenlab.measure` around the timed batches; where no counter
exists it is *estimated* as process CPU time x an assumed power per core, so it follows latency by
construction. Every row says which (``energy_kind``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from ._internal.validate import float_tensor, input_fits, positive
from .comparison import Comparison, TrainEnergy
from .meters import measure
from .profile import count_nonzero, count_params, flops, latency, size_bytes

__all__ = ["Summary", "summarize", "compare", "Comparison", "TrainEnergy", "ENERGY_KEYS", "KINDS"]

ENERGY_KEYS = ("energy_j", "energy_samples", "energy_phase", "energy_kind", "energy_source")
KINDS = ("measured", "estimated", "mixed")
WARMUP = 3  # untimed calls before the timed (and metered) ones


@dataclass(frozen=True)
class Summary(Mapping):
    """What one model scores and costs; a read-only mapping of ledger column -> value.

    ``latency_ms`` / ``latency_p90_ms`` are the median / 90th percentile per batch of
    ``batch_size``, ``latency_1_ms`` the median for one sample. ``flops`` counts one forward pass on
    one sample. ``energy_j`` covers ``energy_samples`` predictions (``energy_phase="inference"``).
    ``None`` means "not known for this kind of model".
    """

    accuracy: float
    f1: float  # macro-F1
    params: int | None = None
    nonzero: int | None = None
    flops: int | None = None
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_1_ms: float | None = None
    batch_size: int | None = None
    size_bytes: int | None = None
    energy_j: float | None = None
    energy_samples: int | None = None
    energy_phase: str | None = None
    energy_kind: str | None = None
    energy_source: str | None = None

    def __getitem__(self, key: str):
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    @property
    def energy_uj_per_sample(self) -> float | None:
        """Inference energy per prediction in µJ (``None`` without an energy)."""
        if self.energy_j is None or not self.energy_samples:
            return None
        return self.energy_j / self.energy_samples * 1e6

    def as_dict(self, energy: bool = True) -> dict:
        """The row as a plain dict; ``energy=False`` drops the ``energy_*`` keys (e.g. to log a
        training energy beside the same model's scores)."""
        return {k: getattr(self, k) for k in _FIELDS if energy or k not in ENERGY_KEYS}

    @classmethod
    def from_mapping(cls, row: Mapping, name: str = "row") -> Summary:
        """A Summary from precomputed values (e.g. a Keras model's); missing keys are ``None``."""
        if not isinstance(row, Mapping):
            raise TypeError(f"{name} must be a mapping of column -> value, got {type(row).__name__}")
        unknown = sorted(set(row) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{name} has unknown keys {unknown}; allowed: {list(_FIELDS)}")
        for key in ("accuracy", "f1"):
            value = row.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"{name}[{key!r}] must be a number in [0, 1], got {value!r}")
            if not 0 <= value <= 1:
                raise ValueError(f"{name}[{key!r}] must be a fraction in [0, 1], got {value}")
        return cls(**row)


_FIELDS = tuple(f.name for f in fields(Summary))


def _array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    return x


def _kind(model) -> str:
    if isinstance(model, nn.Module):
        return "torch"
    if callable(getattr(model, "logits", None)) and hasattr(model, "size_bytes"):
        return "session"
    if callable(getattr(model, "predict", None)) and hasattr(model, "get_params"):
        return "sklearn"
    raise TypeError("model must be a torch module, a scikit-learn estimator or a runtime session "
                    f"(greenlab.runtimes.OrtClassifier, TFLiteClassifier), got {type(model).__name__}")


def _is_int8(model: nn.Module) -> bool:
    """Whether ``model`` holds int8 layers (torch.ao quantized modules, or torchao int8 tensors)."""
    if any(".quantized" in type(m).__module__ for m in model.modules()):
        return True
    return any(t.is_quantized or hasattr(t, "qdata") for t in model.parameters())


def _energy(m, samples: int) -> dict:
    if m.energy_j is None or not math.isfinite(m.energy_j) or m.kind not in KINDS:
        return dict.fromkeys(ENERGY_KEYS)  # no counter and no estimate: nothing to report
    return dict(energy_j=float(m.energy_j), energy_samples=samples, energy_phase="inference",
                energy_kind=m.kind, energy_source=m.source)


def summarize(model, x_test, y_test, batch_size: int = 256, repeats: int = 20, *,
              params: int | None = None, meter=None) -> Summary:
    """Accuracy, macro-F1, size, parameters, FLOPs, latency and inference energy of one model.

    Args:
        model: a torch module (float, pruned, or int8 from ``torch.ao`` / torchao), a scikit-learn
            estimator, or a runtime session (:class:`greenlab.runtimes.OrtClassifier`,
            :class:`~greenlab.runtimes.TFLiteClassifier`). Left as it was (train/eval mode too).
        x_test, y_test: test arrays (numpy or torch); ``x_test[:batch_size]`` is the timed batch.
        batch_size: the batch ``latency_ms`` and the energy are measured on (256).
        repeats: timed calls per latency, after 3 untimed ones.
        params: passed through for a model greenlab cannot count: a session (its weights are
            not visible: pass the float model's) or a scikit-learn estimator (default ``None``).
            Refused for torch modules, whose count is computed (int8 weights counted like the
            float ones they replace, see :func:`greenlab.profile.count_params`).
        meter: the :class:`greenlab.Meter` to measure with (default: ``greenlab.measure``'s).
    Returns:
        A :class:`Summary`. ``flops`` only for float torch models; ``params``/``nonzero`` only for
        torch. The energy window spans the ``repeats`` timed batches: ``energy_samples =
        repeats * batch``, ``energy_phase="inference"``.
    """
    from .train import evaluate, predict

    kind = _kind(model)
    x, y = _array(x_test, "x_test"), _array(y_test, "y_test")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x_test and y_test must have the same, non-zero length, got {len(x)} "
                         f"and {len(y)}")
    batch_size, repeats = positive("batch_size", batch_size), positive("repeats", repeats)
    xt = float_tensor(x, "x_test", finite=True)
    if kind == "torch":
        input_fits(model, xt, "x_test")
    if params is not None:
        if isinstance(params, bool) or not isinstance(params, int):
            raise TypeError(f"params must be an int or None, got {type(params).__name__}")
        if params < 0 or kind == "torch":
            raise ValueError("params must be a count >= 0, and only for a model greenlab cannot "
                             f"count (a torch module's is computed), got {params} for a {kind} "
                             "model")
    batch = np.ascontiguousarray(x[:batch_size], dtype=np.float32)
    one = batch[:1]
    counts: dict = {"params": params}
    was_training = model.training if kind == "torch" else False
    try:
        scores = evaluate(model, x, y)
        if kind == "torch":
            dev = next((p.device for p in model.parameters()), torch.device("cpu"))
            xb, x1 = torch.as_tensor(batch).to(dev), torch.as_tensor(one).to(dev)
            run, run_one = (lambda: model(xb)), (lambda: model(x1))
            counts.update(params=count_params(model), nonzero=count_nonzero(model),
                          flops=None if _is_int8(model) else flops(model, x1))
        elif kind == "session":
            run, run_one = (lambda: model.logits(batch)), (lambda: model.logits(one))
        else:
            run, run_one = (lambda: predict(model, batch)), (lambda: predict(model, one))
        with torch.no_grad():
            for _ in range(WARMUP):
                run()
        with measure(f"gl.summarize {type(model).__name__}", meter=meter) as m:
            lat = latency(run, warmup=0, repeats=repeats)
        lat_one = latency(run_one, warmup=WARMUP, repeats=repeats)
    finally:
        if kind == "torch":
            model.train(was_training)
    return Summary(**scores, **counts, latency_ms=lat.median_ms, latency_p90_ms=lat.p90_ms,
                   latency_1_ms=lat_one.median_ms, batch_size=len(batch),
                   size_bytes=size_bytes(model), **_energy(m, repeats * len(batch)))


def _train_energy(value, name: str, samples) -> TrainEnergy:
    where = f"train_measurements[{name!r}]"
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"energy_j", "energy_kind", "energy_source"})
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; allowed: energy_j, energy_kind, "
                             "energy_source")
        energy, kind, source, m = (value.get("energy_j"), value.get("energy_kind"),
                                   value.get("energy_source"), None)
    elif all(hasattr(value, a) for a in ("energy_j", "kind", "source")):
        energy, kind, source, m = value.energy_j, value.kind, value.source, value
    else:
        raise TypeError(f"{where} must be a greenlab.Measurement or a mapping with energy_j, "
                        f"energy_kind and energy_source, got {type(value).__name__}")
    if isinstance(energy, bool) or not isinstance(energy, (int, float, np.floating)):
        raise TypeError(f"{where} energy_j must be a number of joules, got {energy!r}")
    if not (math.isfinite(energy) and energy >= 0):
        raise ValueError(f"{where} energy_j must be a finite number >= 0, got {energy}")
    if kind not in KINDS:
        raise ValueError(f"{where} kind must be one of {KINDS}, got {kind!r}")
    if samples is not None:
        positive(f"train_samples[{name!r}]", samples)
    return TrainEnergy(float(energy), kind, source, samples, m)


def compare(models: Mapping, x_test=None, y_test=None, *, train_measurements: Mapping | None = None,
            train_samples: Mapping | None = None, batch_size: int = 256, repeats: int = 20,
            meter=None) -> Comparison:
    """Models side by side, each against the first (the baseline), in fixed columns and units.

    Args:
        models: ``{"baseline": m0, "pruned 90%": m1, ...}``, in display order. A value is a model
            (:func:`summarize` measures it) or a precomputed row (a :class:`Summary` or a mapping
            of its keys) for models summarize cannot run, e.g. Keras.
        x_test, y_test: the test arrays (needed when any value is a model).
        train_measurements: ``{name: greenlab.Measurement}`` of each model's training (or a
            mapping with ``energy_j``, ``energy_kind``, ``energy_source``); optional per model.
        train_samples: ``{name: steps * batch}``, the training samples each measurement covered.
        batch_size, repeats, meter: passed to :func:`summarize`.
    Returns:
        A :class:`Comparison`: ``.table`` (numbers), ``.style()`` (rendered), ``.log(...)``.

    Columns: accuracy, macro-F1, params, non-zero params, FLOPs per sample, latency ms at batch 1
    and at ``batch_size``, stored size bytes, inference energy µJ per sample, training energy J,
    and each one's ratio to the baseline (value / baseline's value). An *estimated* energy is CPU
    time x an assumed power per core: it follows latency by construction; *measured* is a counter.
    """
    if not isinstance(models, Mapping):
        raise TypeError(f"models must be a mapping of name -> model or row, got "
                        f"{type(models).__name__}")
    if not models:
        raise ValueError("models must hold at least the baseline")
    rows, labels = {}, {}
    for name, value in models.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"model names must be non-empty strings, got {name!r}")
        if isinstance(value, Mapping):
            rows[name] = value if isinstance(value, Summary) else Summary.from_mapping(
                value, f"models[{name!r}]")
            labels[name] = name
            continue
        if x_test is None or y_test is None:
            raise ValueError(f"x_test and y_test are needed to summarize models[{name!r}]")
        rows[name] = summarize(value, x_test, y_test, batch_size, repeats, meter=meter)
        labels[name] = type(value).__name__.lower()
    train_samples = dict(train_samples or {})
    train = {}
    for source, what in ((train_measurements or {}, "train_measurements"),
                         (train_samples, "train_samples")):
        if not isinstance(source, Mapping):
            raise TypeError(f"{what} must be a mapping of model name -> value")
        missing = [n for n in source if n not in rows]
        if missing:
            raise ValueError(f"{what} names {missing}, which are not in models {list(rows)}")
    for name, value in (train_measurements or {}).items():
        train[name] = _train_energy(value, name, train_samples.pop(name, None))
    if train_samples:
        raise ValueError(f"train_samples names {list(train_samples)} without a training measurement")
    return Comparison(rows, train, labels)
