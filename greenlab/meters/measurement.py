"""What a window returns: an immutable :class:`Measurement` of :class:`Part` s, and the
:class:`PowerModel` behind any estimate."""

from __future__ import annotations

import abc
import math
import os
from dataclasses import asdict, dataclass

J_PER_KWH = 3.6e6  # exact: 1 kWh = 1000 W x 3600 s
KINDS = ("measured", "estimated", "mixed", "unavailable")


@dataclass(frozen=True)
class PowerModel:
    """The assumptions behind an estimate: energy = CPU time x watts per busy core.

    The default (10 W per busy core, plausible range 5-15 W) is typical of laptop/desktop/server
    cores under load (package TDP / cores). It leaves out DRAM, GPU, idle power, fans and PSU losses.
    Set ``GREENLAB_WATTS_PER_CORE`` or pass your own, e.g. ``PowerModel(125 / 16, origin="i9 TDP/16")``.
    """

    watts_per_core: float = 10.0
    low_w: float = 5.0
    high_w: float = 15.0
    origin: str = "assumed typical TDP per core; not measured on this machine"

    def __post_init__(self) -> None:
        for name in ("watts_per_core", "low_w", "high_w"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number of watts, got {type(value).__name__}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of watts, got {value}")
        if not self.low_w <= self.watts_per_core <= self.high_w:
            raise ValueError(
                f"watts_per_core must lie in [low_w, high_w] = [{self.low_w}, {self.high_w}], "
                f"got {self.watts_per_core}"
            )

    @classmethod
    def from_env(cls) -> PowerModel:
        """The default, or ``GREENLAB_WATTS_PER_CORE`` watts (range x0.5-x1.5) when it is set."""
        value = os.environ.get("GREENLAB_WATTS_PER_CORE")
        if not value:
            return cls()
        try:
            watts = float(value)
        except ValueError:
            raise ValueError(
                f"GREENLAB_WATTS_PER_CORE must be a number of watts, got {value!r}"
            ) from None
        return cls(watts, min(watts, 0.5 * watts), max(watts, 1.5 * watts), "GREENLAB_WATTS_PER_CORE")

    def describe(self) -> str:
        return (
            f"CPU time x {self.watts_per_core:g} W/core (range {self.low_w:g}-{self.high_w:g} W; "
            f"{self.origin})"
        )


@dataclass(frozen=True)
class Part:
    """The energy of one part of the machine in one window."""

    name: str  # "cpu", "dram", "gpu:0"
    energy_j: float | None  # None when unavailable
    kind: str  # "measured" | "estimated" | "unavailable"
    source: str  # "rapl:package-0", "nvml:gpu:0", "model:cpu_time_s*W", ...
    note: str = ""  # why a part is estimated or unavailable, what an estimate leaves out


def combined_kind(parts: tuple[Part, ...] | list[Part]) -> str:
    """``measured`` / ``estimated`` when every available part is, ``mixed`` when both occur."""
    kinds = {p.kind for p in parts if p.kind != "unavailable"}
    return "mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "unavailable")


@dataclass(frozen=True)
class Measurement(abc.ABC):
    """One measured window, built once when it ends. Units are in the names; ``kind`` says how far
    to trust ``energy_j``: ``measured`` (counters), ``estimated`` (CPU time x :class:`PowerModel`),
    ``mixed`` (some parts each) or ``unavailable`` (no source: ``energy_j`` is NaN)."""

    name: str
    time_s: float
    cpu_time_s: float  # this process's CPU time
    energy_j: float
    source: str  # "rapl" | "nvml" | "rapl+nvml" | "estimate" | "codecarbon" | ...
    kind: str
    energy_j_low: float = math.nan
    energy_j_high: float = math.nan
    estimate_j: float = math.nan  # the CPU-time model's figure, also when a counter measured
    power_model: str | None = None  # assumptions, when any part is estimated
    parts: tuple[Part, ...] = ()
    warnings: tuple[str, ...] = ()
    child_cpu_time_s: float = 0.0  # CPU time of child processes that ended and were waited for

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.time_s if self.time_s > 0 else math.nan

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    def co2e_g(self, grid_g_per_kwh: float = 400.0) -> float:
        """Grams of CO2-equivalent at a grid intensity (default: a rough world average)."""
        if not grid_g_per_kwh >= 0:
            raise ValueError(f"grid_g_per_kwh must be >= 0, got {grid_g_per_kwh}")
        return self.energy_kwh * grid_g_per_kwh

    def as_dict(self) -> dict:
        out = asdict(self)
        out["parts"] = [asdict(p) for p in self.parts]
        return out

    def __str__(self) -> str:
        spread = f" [{self.energy_j_low:.3g}-{self.energy_j_high:.3g}]"
        text = (
            f"{self.name}: {self.energy_j:.3g} J{spread} {self.kind} ({self.source}) "
            f"in {self.time_s:.3g} s, CPU {self.cpu_time_s:.3g} s"
        )
        if self.child_cpu_time_s:
            text += f" (+ {self.child_cpu_time_s:.3g} s in child processes)"
        if self.power_model:
            text += f"\n  model: {self.power_model}"
        return text + "".join(f"\n  warning: {w}" for w in self.warnings)


# every public attribute a Measurement has: what a Window forwards once it is closed
FIELDS = frozenset(Measurement.__dataclass_fields__) | frozenset(
    n for n in dir(Measurement) if not n.startswith("_"))
