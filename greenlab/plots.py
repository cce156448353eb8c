"""Figures the lessons share: trade-off curves and the energy-vs-accuracy Pareto front.

Axes carry units; every energy point shows how it was obtained (measured: filled, mixed: half
filled, estimated: hollow, modelled: hollow square, unknown: a cross), so a figure never passes an
estimate off as a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pareto_front", "plot_pareto", "plot_tradeoff", "LABELS", "KIND_STYLES"]

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


# energy_kind -> (marker, fillstyle, legend text); any other value (None, NaN, ...) is "unknown"
KIND_STYLES = {
    "measured": ("o", "full", "filled = measured energy"),
    "mixed": ("o", "left", "half filled = mixed (part measured, part estimated)"),
    "estimated": ("o", "none", "hollow = estimated energy"),
    "modelled": ("s", "none", "hollow square = modelled energy"),
    "unknown": ("X", "full", "cross = energy of unknown provenance"),
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

    Each point's marker says its row's ``kind`` (see ``KIND_STYLES``: measured filled, mixed half,
    estimated hollow, modelled a hollow square, anything else, or no ``kind`` column on an energy
    axis, a cross). An energy axis refuses rows of both phases, and rows with energy but no
    ``energy_phase``. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    _columns(df, x, y, label)
    df = df.dropna(subset=[x, y])
    if df.empty:
        raise ValueError(f"df has no rows with both {x!r} and {y!r}")
    if x.startswith("energy") and "energy_phase" in df.columns:
        unknown = int(df["energy_phase"].isna().sum())
        if unknown:
            raise ValueError(f"{unknown} row(s) have {x} but no energy_phase (from an older "
                             "greenlab?): training and inference energy cannot be told apart; "
                             "drop them or set energy_phase")
        phases = sorted(df["energy_phase"].unique())
        if len(phases) > 1:
            raise ValueError(f"df mixes training and inference energy (energy_phase {phases}): "
                             "plot one, e.g. greenlab.ledger.read(phase='inference')")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    front = pareto_front(df[x].to_numpy(), df[y].to_numpy())
    colors = dict(zip(sorted(df[label].astype(str).unique()), plt.cm.tab10.colors * 3, strict=False))
    if kind in df.columns:
        kinds = [_kind(v) for v in df[kind]]
    else:  # no provenance column: unknown on an energy axis, plain markers on any other
        kinds = ["unknown" if x.startswith("energy") else "plain"] * len(df)
    for (_, row), on_front, k in zip(df.iterrows(), front, kinds, strict=True):
        marker, fill, _ = KIND_STYLES.get(k, ("o", "full", ""))
        color = colors[str(row[label])]
        ax.plot([row[x]], [row[y]], ls="none", marker=marker, fillstyle=fill, color=color,
                markerfacecoloralt="none", markersize=9 if on_front else 7, markeredgewidth=1.5,
                zorder=3, gid=f"kind:{k}")
    pts = df[front].sort_values(x)
    ax.step(pts[x], pts[y], where="post", color="0.3", lw=1, ls="--", label="Pareto front")
    for name, color in colors.items():
        ax.scatter([], [], color=color, label=name)
    if set(kinds) != {"plain"}:
        for k, (marker, fill, text) in KIND_STYLES.items():
            if k in kinds:
                ax.plot([], [], ls="none", marker=marker, fillstyle=fill, color="0.3",
                        markerfacecoloralt="none", label=text)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def _kind(value) -> str:
    return value if isinstance(value, str) and value in KIND_STYLES else "unknown"


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
