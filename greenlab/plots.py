"""Figures the lessons share: trade-off curves and the energy-vs-accuracy Pareto front.

Axes carry units; estimated energies are drawn hollow and measured ones filled, so a figure never
passes an estimate off as a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pareto_front", "plot_pareto", "plot_tradeoff", "LABELS"]

LABELS = {
    "energy_j": "energy (J)",
    "accuracy": "test accuracy",
    "f1": "macro-F1",
    "latency_ms": "latency (ms / batch)",
    "size_bytes": "model size (bytes)",
    "params": "parameters",
    "sparsity": "sparsity (fraction of zero weights)",
    "rank": "rank",
    "temperature": "temperature T",
}


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """Boolean mask of points no other point beats (lower-or-equal cost *and* higher-or-equal score,
    strictly better in one)."""
    c, s = np.asarray(cost, dtype=float), np.asarray(score, dtype=float)
    if c.shape != s.shape or c.ndim != 1:
        raise ValueError(f"cost and score must be 1-D and the same length, got {c.shape} and {s.shape}")
    if np.isnan(c).any() or np.isnan(s).any():
        raise ValueError("cost and score must not contain NaN")
    keep = np.ones(len(c), dtype=bool)
    for i in range(len(c)):
        dominated = (c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i]))
        keep[i] = not dominated.any()
    return keep


def _columns(df, *names) -> None:
    missing = [n for n in names if n is not None and n not in df.columns]
    if missing:
        raise ValueError(f"df has no column(s) {missing}; columns are {list(df.columns)}")


def plot_pareto(df, x: str = "energy_j", y: str = "accuracy", label: str = "technique",
                kind: str | None = "energy_kind", logx: bool = True, ax=None):
    """Scatter ``y`` against ``x`` for each row of ``df``, with the Pareto front drawn as a step line.

    Rows whose ``kind`` column says "estimated" are drawn hollow. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    _columns(df, x, y, label)
    df = df.dropna(subset=[x, y])
    if df.empty:
        raise ValueError(f"df has no rows with both {x!r} and {y!r}")
    if x.startswith("energy") and "energy_phase" in df.columns:
        phases = sorted(df["energy_phase"].dropna().unique())
        if len(phases) > 1:
            raise ValueError(f"df mixes training and inference energy (energy_phase {phases}): "
                             "plot one, e.g. greenlab.ledger.read(phase='inference')")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    front = pareto_front(df[x].to_numpy(), df[y].to_numpy())
    colors = dict(zip(sorted(df[label].astype(str).unique()), plt.cm.tab10.colors * 3, strict=False))
    for (_, row), on_front in zip(df.iterrows(), front, strict=True):
        estimated = kind in df.columns and str(row.get(kind)) == "estimated"
        color = colors[str(row[label])]
        ax.scatter(row[x], row[y], s=70 if on_front else 40, edgecolors=color, linewidths=1.5,
                   facecolors="none" if estimated else color, zorder=3)
    pts = df[front].sort_values(x)
    ax.step(pts[x], pts[y], where="post", color="0.3", lw=1, ls="--", label="Pareto front")
    for name, color in colors.items():
        ax.scatter([], [], color=color, label=name)
    if kind in df.columns and (df[kind] == "estimated").any():
        ax.scatter([], [], facecolors="none", edgecolors="0.3", label="hollow = estimated energy")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_tradeoff(df, x: str, y: str = "accuracy", hue: str | None = None, baseline: float | None = None,
                  ax=None, **kwargs):
    """A seaborn line plot of ``y`` against ``x`` (e.g. accuracy vs sparsity), with an optional
    horizontal baseline. Returns the Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    _columns(df, x, y, hue)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    sns.lineplot(data=df, x=x, y=y, hue=hue, marker="o", ax=ax, **kwargs)
    if baseline is not None:
        ax.axhline(baseline, color="0.4", ls=":", label="baseline")
        ax.legend()
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.grid(alpha=0.3)
    return ax
