"""The side-by-side table :func:`greenlab.compare` returns: numbers, a rendering, ledger rows.

Kept apart from :mod:`greenlab.results` (the rows and how they are measured): this module only
arranges, formats and logs rows that already exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .results import Summary

__all__ = ["Comparison", "TrainEnergy"]


@dataclass(frozen=True)
class TrainEnergy:
    """A model's training energy, as :func:`greenlab.compare` got it."""

    energy_j: float
    kind: str
    source: str | None
    samples: int | None = None  # training samples seen (steps x batch), for the ledger
    measurement: object = field(default=None, repr=False, compare=False)


# column, header, higher is better, relative change below which it is not shaded (noise)
_METRICS = (
    ("accuracy", "accuracy", True, 0.005),
    ("f1", "macro-F1", True, 0.005),
    ("params", "params", False, 0.0),
    ("nonzero", "non-zero params", False, 0.0),
    ("flops", "FLOPs / sample", False, 0.0),
    ("latency_1_ms", "latency, batch 1", False, 0.05),
    ("latency_ms", "latency, batch {batch}", False, 0.05),
    ("size_bytes", "stored size", False, 0.0),
    ("infer_uj_per_sample", "inference energy / sample", False, 0.05),
    ("train_energy_j", "training energy", False, 0.05),
)
_ENERGY = {"infer_uj_per_sample": "infer_energy_kind", "train_energy_j": "train_energy_kind"}
_GREEN, _RED = "background-color: #d8f0d8", "background-color: #f6d5d5"


def _si(value: float, unit: str, base: float = 1000.0) -> str:
    for prefix in ("", "k", "M", "G", "T"):
        if abs(value) < base or prefix == "T":
            return f"{value:.3g} {prefix}{unit}".rstrip()
        value /= base
    return ""  # unreachable


def _num(value: float, unit: str) -> str:
    """3 significant digits, in the column's fixed unit (never 1e+03): 0.0292, 12.3, 4,560."""
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"


_FORMAT = {
    "accuracy": "{:.3f}".format, "f1": "{:.3f}".format,
    "params": "{:,.0f}".format, "nonzero": "{:,.0f}".format,
    "flops": lambda v: _si(v, ""), "size_bytes": lambda v: _si(v, "B"),
    "latency_1_ms": lambda v: _num(v, "ms"), "latency_ms": lambda v: _num(v, "ms"),
    "infer_uj_per_sample": lambda v: _num(v, "µJ"), "train_energy_j": lambda v: _num(v, "J"),
}


@dataclass(frozen=True, eq=False)
class Comparison:
    """Models side by side (:func:`greenlab.compare`): ``.table`` of numbers, ``.style()`` to
    read, ``.log()`` to store.

    Ratio columns (``<column>_ratio``) are value / the baseline's value: the baseline row is 1.0,
    0.25 latency is 4x faster, 0.99 accuracy is 1 % lower. Inference energy is µJ per predicted
    sample, training energy J for the whole training run, each with its kind: *estimated* =
    process CPU time x an assumed power per core (:class:`greenlab.meters.PowerModel`), so it
    follows latency by construction; *measured* = hardware counters (RAPL, NVML).
    """

    rows: dict[str, Summary]
    train: dict[str, TrainEnergy]
    labels: dict[str, str]  # name -> model label for the ledger

    @property
    def baseline(self) -> str:
        return next(iter(self.rows))

    @property
    def table(self):
        """A pandas DataFrame, one row per model (index: the names), numbers only."""
        import pandas as pd

        records = {}
        for name, row in self.rows.items():
            t = self.train.get(name)
            rec = {c: getattr(row, c, None) for c, *_ in _METRICS[:8]}
            rec.update(infer_uj_per_sample=row.energy_uj_per_sample,
                       train_energy_j=t.energy_j if t else None)
            records[name] = {**rec, "infer_energy_kind": row.energy_kind,
                             "train_energy_kind": t.kind if t else None,
                             "batch_size": row.batch_size}
        df = pd.DataFrame.from_dict(records, orient="index")
        df.index.name = "model"
        out = {}
        for col, *_ in _METRICS:
            values = pd.to_numeric(df[col], errors="coerce").astype(float)
            base = values.iloc[0]
            out[col] = values
            out[f"{col}_ratio"] = values / base if base and math.isfinite(base) else values * np.nan
        for col in ("infer_energy_kind", "train_energy_kind", "batch_size"):
            out[col] = df[col]
        return pd.DataFrame(out, index=df.index)

    def _headers(self, table) -> dict[str, str]:
        batches = {int(b) for b in table["batch_size"].dropna()}
        batch = str(batches.pop()) if len(batches) == 1 else "batch_size"
        heads = {}
        for col, head, *_ in _METRICS:
            head = head.format(batch=batch)
            kinds = set(table[_ENERGY[col]].dropna()) if col in _ENERGY else set()
            heads[col] = f"{head} ({kinds.pop()})" if len(kinds) == 1 else head
        return heads

    def _display(self):
        """The table as strings: 'value (ratio x)', the energy kind per cell where kinds differ."""
        import pandas as pd

        table = self.table
        heads = self._headers(table)
        cells = {}
        for col, *_ in _METRICS:
            mixed = col in _ENERGY and table[_ENERGY[col]].dropna().nunique() > 1
            column = []
            for name, value, ratio in zip(table.index, table[col], table[f"{col}_ratio"],
                                          strict=True):
                if not math.isfinite(value):
                    column.append("–")
                    continue
                text = _FORMAT[col](value)
                if mixed:
                    text += f" {table.loc[name, _ENERGY[col]]}"
                if name != self.baseline and math.isfinite(ratio):
                    text += f" ({ratio:.3g}x)"
                column.append(text)
            cells[heads[col]] = column
        mark = "" if "baseline" in self.baseline.lower() else " (baseline)"
        index = [n + mark if n == self.baseline else n for n in table.index]
        return pd.DataFrame(cells, index=pd.Index(index, name="model"))

    def caption(self) -> str:
        kinds = {r.energy_kind for r in self.rows.values()} | {t.kind for t in self.train.values()}
        text = (f"In brackets: value / the baseline's value (baseline: {self.baseline}, in bold). "
                "Green: better than the baseline, red: worse (accuracy and macro-F1: higher is "
                "better; every other column: lower is better). Inference energy: per predicted "
                "sample; training energy: the whole training run.")
        if "estimated" in kinds or "mixed" in kinds:
            text += (" Estimated energy = process CPU time x an assumed power per core "
                     "(greenlab.meters.PowerModel), so it follows latency by construction.")
        if "measured" in kinds or "mixed" in kinds:
            text += " Measured energy: hardware counters (RAPL, NVML)."
        return text

    def _shades(self, display):
        import pandas as pd

        table = self.table
        css = pd.DataFrame("", index=display.index, columns=display.columns)
        for j, (col, _, higher, tol) in enumerate(_METRICS):
            for i, ratio in enumerate(table[f"{col}_ratio"]):
                if i == 0 or not math.isfinite(ratio) or abs(ratio - 1) <= tol:
                    continue
                css.iloc[i, j] = _GREEN if (ratio > 1) == higher else _RED
        css.iloc[0, :] = "font-weight: bold; border-bottom: 2px solid #888"
        return css

    def style(self):
        """A pandas Styler: units formatted, baseline row in bold, better / worse shaded."""
        display = self._display()
        shades = self._shades(display)
        return (display.style.apply(lambda _: shades, axis=None)
                .apply_index(lambda idx: ["font-weight: bold" if i == 0 else ""
                                          for i in range(len(idx))], axis=0)
                .set_caption(self.caption())
                .set_table_styles([
                    {"selector": "caption", "props": "caption-side: bottom; text-align: left"},
                    {"selector": "td", "props": "text-align: right; padding: 2px 8px"}]))

    def _repr_html_(self) -> str:
        return self.style().to_html()

    def __str__(self) -> str:
        import textwrap

        return (self._display().to_string() + "\n" +
                textwrap.fill(self.caption(), width=100))

    __repr__ = __str__

    def log(self, lesson: str, dataset: str | None = None, *, model: str | Mapping | None = None,
            notes: str | None = None, path=None) -> list[dict]:
        """Log every model to the ledger: one inference row each (its :class:`Summary`), and one
        training row where a training measurement was given. ``technique`` is the model's name
        in the comparison; ``model`` labels the architecture (one string, or name -> string;
        default: the model's class name). Returns the rows as stored."""
        from .ledger import log

        if model is not None and not isinstance(model, (str, Mapping)):
            raise TypeError(f"model must be a string or a mapping of name -> string, got "
                            f"{type(model).__name__}")
        stored = []
        for name, row in self.rows.items():
            label = model if isinstance(model, str) else (model or {}).get(name, self.labels[name])
            common = dict(lesson=lesson, technique=name, model=label, dataset=dataset, notes=notes,
                          path=path)
            stored.append(log(**common, **row.as_dict()))
            t = self.train.get(name)
            if t is None:
                continue
            energy = (dict(measurement=t.measurement) if t.measurement is not None else
                      dict(energy_j=t.energy_j, energy_kind=t.kind, energy_source=t.source))
            stored.append(log(**common, **row.as_dict(energy=False), **energy,
                              energy_phase="train", energy_samples=t.samples))
        return stored
