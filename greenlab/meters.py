"""Energy meters that say what they measured and what they only estimated.

One small API, shaped like Zeus's ``begin_window`` / ``end_window``::

    with greenlab.measure("mlp-train") as m:
        train(model, data)
    m.energy_j, m.time_s, m.source, m.kind      # kind: "measured" | "estimated" | "mixed"

Sources, tried in this order for each part of the machine:

* ``nvml``      GPU energy counter (``nvmlDeviceGetTotalEnergyConsumption``), measured.
* ``rapl``      CPU package and DRAM counters in ``/sys/class/powercap``, measured.
* ``codecarbon`` only where it can *measure* the CPU and RAPL cannot (macOS powermetrics,
  Windows Intel Power Gadget); on Linux without RAPL it would only estimate, so we do not pretend.
* ``estimate``  process CPU time x an assumed power per busy core (:class:`PowerModel`).

Counters are probed once, when a :class:`Meter` is built; ``begin``/``end`` then only read numbers
(microseconds), start no thread and never raise for a missing counter. Every result carries, per part,
its energy, whether it was measured or estimated, its source, and the assumptions of any estimate.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "Measurement",
    "Part",
    "PowerModel",
    "Meter",
    "ReplayMeter",
    "measure",
    "begin",
    "end",
    "available_sources",
    "codecarbon_measure",
    "J_PER_KWH",
]

J_PER_KWH = 3.6e6  # exact: 1 kWh = 1000 W x 3600 s
RAPL_MIN_WINDOW_S = 0.01  # RAPL updates about every 1 ms: fewer than ~10 updates is noise
ESTIMATE_MIN_CPU_S = 0.02  # below this, CPU-time accounting granularity dominates
SOURCES = ("nvml", "rapl", "codecarbon", "estimate")


@dataclass(frozen=True)
class PowerModel:
    """The assumptions behind an estimate: energy = process CPU time x watts per busy core.

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
    source: str  # "rapl:package-0", "nvml:gpu0", "model:cpu_time_s*W", ...
    note: str = ""


@dataclass
class Measurement:
    """One measured window. Units are in the names; ``kind`` says how far to trust ``energy_j``."""

    name: str
    time_s: float = math.nan
    cpu_time_s: float = math.nan
    energy_j: float = math.nan
    source: str = "pending"  # "rapl" | "nvml" | "rapl+nvml" | "codecarbon" | "estimate"
    kind: str = "pending"  # "measured" | "estimated" | "mixed"
    energy_j_low: float = math.nan
    energy_j_high: float = math.nan
    estimate_j: float = math.nan  # the CPU-time model's figure, also when a counter measured
    power_model: str | None = None  # assumptions, when any part is estimated
    parts: tuple[Part, ...] = ()
    warnings: tuple[str, ...] = ()
    idle_power_w: float | None = None

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.time_s if self.time_s > 0 else math.nan

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    @property
    def dynamic_energy_j(self) -> float:
        """Energy above the idle baseline (only when the meter knows its idle power)."""
        if self.idle_power_w is None or self.kind == "estimated":
            return self.energy_j  # the CPU-time model counts busy time only
        return self.energy_j - self.idle_power_w * self.time_s

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
        if self.kind == "pending":
            return f"{self.name}: (still measuring)"
        spread = f" [{self.energy_j_low:.3g}-{self.energy_j_high:.3g}]"
        text = (
            f"{self.name}: {self.energy_j:.3g} J{spread} {self.kind} ({self.source}) "
            f"in {self.time_s:.3g} s, CPU {self.cpu_time_s:.3g} s"
        )
        if self.power_model:
            text += f"\n  model: {self.power_model}"
        return text + "".join(f"\n  warning: {w}" for w in self.warnings)


# --------------------------------------------------------------------------- counters


class _Rapl:
    """Package and DRAM domains under a powercap root, deduplicated, with wrap-around."""

    def __init__(self, domains: list[tuple[str, Path, float]]):
        self.domains = domains  # (label, energy_uj path, max_energy_range_uj)

    @classmethod
    def probe(cls, root: str | Path) -> tuple[_Rapl | None, str]:
        root = Path(root)
        if not root.is_dir():
            return None, f"{root} not present (no RAPL on this machine or kernel)"
        domains, seen_names, denied = [], set(), False
        for zone in sorted(root.glob("intel-rapl:*")) + sorted(root.glob("amd-rapl:*")):
            try:
                name = (zone / "name").read_text().strip()
            except OSError:
                continue
            depth = zone.name.count(":")
            wanted = name.startswith("package") if depth == 1 else name == "dram"
            if not wanted:  # psys contains the packages; core/uncore lie inside a package
                continue
            if depth == 1 and name in seen_names:  # some AMD dies mirror one counter
                continue
            try:
                (zone / "energy_uj").read_text()
                max_uj = float((zone / "max_energy_range_uj").read_text())
            except PermissionError:
                denied = True
                continue
            except (OSError, ValueError):
                continue
            seen_names.add(name)
            label = f"{name}-{zone.name.split(':')[1]}" if name == "dram" else name
            domains.append((label, zone / "energy_uj", max_uj))
        if not domains:
            why = (
                "RAPL counters exist but are readable only by root (Linux >= 5.10); "
                "ask an admin for read access to energy_uj"
                if denied
                else "no package/dram RAPL domain found"
            )
            return None, why
        return cls(domains), "readable: " + ", ".join(d[0] for d in domains)

    def read(self) -> dict[str, float]:
        return {label: float(path.read_text()) for label, path, _ in self.domains}

    def delta_j(self, start: dict[str, float], stop: dict[str, float]) -> dict[str, float]:
        out = {}
        for label, _, max_uj in self.domains:
            diff = stop[label] - start[label]
            if diff < 0:  # the counter wrapped
                diff += max_uj
            out[label] = diff / 1e6
        return out


class _Nvml:
    def __init__(self, handles):
        self.handles = handles

    @classmethod
    def probe(cls) -> tuple[_Nvml | None, str]:
        try:
            import pynvml
        except ImportError:
            return None, "nvidia-ml-py not installed"
        try:
            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            for h in handles:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        except Exception as exc:  # no driver, no GPU, or a GPU older than Volta
            return None, f"no NVIDIA GPU energy counter ({type(exc).__name__})"
        if not handles:
            return None, "no NVIDIA GPU"
        return cls(handles), f"readable: {len(handles)} GPU(s)"

    def read(self) -> dict[str, float]:
        import pynvml

        return {
            f"gpu:{i}": float(pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
            for i, h in enumerate(self.handles)
        }

    @staticmethod
    def delta_j(start: dict[str, float], stop: dict[str, float]) -> dict[str, float]:
        return {k: (stop[k] - start[k]) / 1e3 for k in start}  # mJ -> J


def _codecarbon_can_measure() -> str | None:
    """Codecarbon measures the CPU only through OS tools outside Linux powercap."""
    system = platform.system()
    if system == "Darwin":
        return "macOS powermetrics (needs sudo)"
    if system == "Windows":
        return "Intel Power Gadget (if installed)"
    return None


def _cuda_sync() -> None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    except Exception:
        pass


# --------------------------------------------------------------------------- the meter


@dataclass
class _Window:
    t0: float
    c0: float
    counters: dict[str, dict[str, float]] = field(default_factory=dict)


class Meter:
    """Measures named windows; ``begin``/``end`` nest and never raise for a missing counter.

    Args:
        sources: which sources to try, in order (subset of ``nvml, rapl, codecarbon, estimate``).
        power_model: assumptions for the CPU estimate (default: :meth:`PowerModel.from_env`).
        powercap_root: where RAPL lives (a fake folder in tests).
        idle_power_w: the machine's idle power, to report ``dynamic_energy_j``; see
            :meth:`calibrate_idle`.
    """

    def __init__(
        self,
        sources: Sequence[str] = ("nvml", "rapl", "codecarbon", "estimate"),
        power_model: PowerModel | None = None,
        powercap_root: str | Path = "/sys/class/powercap",
        idle_power_w: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ):
        if isinstance(sources, str):
            raise TypeError("sources must be a sequence of source names, not a single string")
        unknown = [s for s in sources if s not in SOURCES]
        if unknown or not sources:
            raise ValueError(f"sources must be a non-empty subset of {SOURCES}, got {list(sources)}")
        if power_model is not None and not isinstance(power_model, PowerModel):
            raise TypeError(f"power_model must be a PowerModel, got {type(power_model).__name__}")
        if idle_power_w is not None and not idle_power_w >= 0:
            raise ValueError(f"idle_power_w must be >= 0 watts, got {idle_power_w}")
        self.sources = tuple(sources)
        self.power_model = power_model or PowerModel.from_env()
        self.idle_power_w = idle_power_w
        self._clock, self._cpu_clock = clock, cpu_clock
        self._open: dict[str, _Window] = {}
        self.status: dict[str, str] = {}
        self._rapl = self._nvml = None
        if "nvml" in self.sources:
            self._nvml, self.status["nvml"] = _Nvml.probe()
        if "rapl" in self.sources:
            self._rapl, self.status["rapl"] = _Rapl.probe(powercap_root)
        if "codecarbon" in self.sources:
            how = _codecarbon_can_measure() if self._rapl is None else None
            self.status["codecarbon"] = (
                f"may measure via {how}: use codecarbon_measure()"
                if how
                else "not used: on this OS it can measure nothing greenlab cannot read itself"
            )
        if "estimate" in self.sources:
            self.status["estimate"] = "always: " + self.power_model.describe()

    # -- windows
    def _snapshot(self) -> _Window:
        """Clocks and counters now (after letting queued GPU work finish)."""
        _cuda_sync()
        counters = {}
        if self._rapl:
            counters["rapl"] = self._rapl.read()
        if self._nvml:
            counters["nvml"] = self._nvml.read()
        return _Window(self._clock(), self._cpu_clock(), counters)

    def _take(self, name: str) -> _Window:
        if name not in self._open:
            raise ValueError(f"no open window named {name!r}; open ones: {sorted(self._open)}")
        return self._open.pop(name)

    def begin(self, name: str) -> None:
        """Open a window called ``name`` (windows may nest; names must differ)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name in self._open:
            raise ValueError(f"a window named {name!r} is already open; end it or pick another name")
        self._open[name] = self._snapshot()

    def end(self, name: str) -> Measurement:
        """Close the window ``name`` and return its :class:`Measurement`."""
        start = self._take(name)
        stop = self._snapshot()
        return self._result(name, stop.t0 - start.t0, stop.c0 - start.c0, start.counters,
                            stop.counters)

    @contextmanager
    def measure(self, name: str) -> Iterator[Measurement]:
        """``with meter.measure("x") as m:`` -- ``m`` is filled in when the block ends."""
        result = Measurement(name)
        self.begin(name)
        try:
            yield result
        finally:
            result.__dict__.update(self.end(name).__dict__)

    def calibrate_idle(self, seconds: float = 1.0) -> float | None:
        """Measure idle power by sleeping; needs a counter (returns None without one)."""
        if not self._rapl and not self._nvml:
            return None
        m = self.measure("__idle__")
        with m as r:
            time.sleep(seconds)
        self.idle_power_w = r.energy_j / r.time_s
        return self.idle_power_w

    # -- assembling the result
    def _result(self, name, time_s, cpu_time_s, start, stop) -> Measurement:
        pm = self.power_model
        estimate_j = cpu_time_s * pm.watts_per_core
        parts, warnings = [], []
        low = high = 0.0
        if self._rapl:
            for label, joules in self._rapl.delta_j(start["rapl"], stop["rapl"]).items():
                part_name = "dram" if label.startswith("dram") else "cpu"
                parts.append(Part(part_name, joules, "measured", f"rapl:{label}"))
                low, high = low + joules, high + joules
            if time_s < RAPL_MIN_WINDOW_S:
                warnings.append(
                    f"window of {time_s * 1e3:.2f} ms is shorter than ~10 RAPL updates; "
                    "repeat the work inside the window and divide"
                )
        elif "estimate" in self.sources:
            note = "process CPU time; excludes DRAM, idle power and other processes"
            parts.append(Part("cpu", estimate_j, "estimated", "model:cpu_time_s*W", note))
            low += cpu_time_s * pm.low_w
            high += cpu_time_s * pm.high_w
            if cpu_time_s < ESTIMATE_MIN_CPU_S:
                warnings.append(
                    f"only {cpu_time_s * 1e3:.1f} ms of CPU time: the estimate is dominated by "
                    "accounting granularity; repeat the work and divide"
                )
        else:
            parts.append(Part("cpu", None, "unavailable", "none", self.status.get("rapl", "")))
        if self._nvml:
            for label, joules in self._nvml.delta_j(start["nvml"], stop["nvml"]).items():
                parts.append(Part(label, joules, "measured", f"nvml:{label}"))
                low, high = low + joules, high + joules
        kinds = {p.kind for p in parts if p.kind != "unavailable"}
        kind = "mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "unavailable")
        families = []
        for p in parts:
            fam = p.source.split(":")[0].replace("model", "estimate")
            if p.kind != "unavailable" and fam not in families:
                families.append(fam)
        energy = [p.energy_j for p in parts if p.energy_j is not None]
        return Measurement(
            name=name,
            time_s=time_s,
            cpu_time_s=cpu_time_s,
            energy_j=sum(energy) if energy else math.nan,
            source="+".join(families) or "none",
            kind=kind,
            energy_j_low=low if energy else math.nan,
            energy_j_high=high if energy else math.nan,
            estimate_j=estimate_j,
            power_model=pm.describe() if any(p.kind == "estimated" for p in parts) else None,
            parts=tuple(parts),
            warnings=tuple(warnings),
            idle_power_w=self.idle_power_w,
        )


class ReplayMeter(Meter):
    """A deterministic meter for tests and examples: replays ``(time_s, cpu_time_s)`` per window.

    Energy follows the power model (``estimated``), or ``counter_w`` watts as if ``measured``.
    """

    def __init__(self, windows: Sequence[tuple[float, float]], counter_w: float | None = None,
                 power_model: PowerModel | None = None):
        super().__init__(sources=("estimate",), power_model=power_model or PowerModel())
        self._replay = list(windows)
        self.counter_w = counter_w

    def _snapshot(self) -> _Window:
        return _Window(0.0, 0.0)

    def end(self, name: str) -> Measurement:
        self._take(name)
        if not self._replay:
            raise ValueError("ReplayMeter ran out of recorded windows")
        time_s, cpu_s = self._replay.pop(0)
        m = self._result(name, time_s, cpu_s, {}, {})
        if self.counter_w is None:
            return m
        joules = self.counter_w * time_s
        part = Part("cpu", joules, "measured", "replay:counter")
        m.energy_j = m.energy_j_low = m.energy_j_high = joules
        m.kind, m.source, m.parts, m.power_model, m.warnings = "measured", "replay", (part,), None, ()
        return m


# --------------------------------------------------------------------------- module-level API

_default: Meter | None = None


def _meter() -> Meter:
    global _default
    if _default is None:
        _default = Meter()
    return _default


def measure(name: str, meter: Meter | None = None):
    """``with greenlab.measure("x") as m:`` using the default meter (built on first use)."""
    return (meter or _meter()).measure(name)


def begin(name: str) -> None:
    """Open a window on the default meter."""
    _meter().begin(name)


def end(name: str) -> Measurement:
    """Close a window on the default meter."""
    return _meter().end(name)


def available_sources(powercap_root: str | Path = "/sys/class/powercap") -> dict[str, str]:
    """Each source and whether it can be used here, with the reason."""
    return Meter(powercap_root=powercap_root).status


@contextmanager
def codecarbon_measure(name: str, country_iso_code: str = "USA") -> Iterator[Measurement]:
    """Measure a block with codecarbon's offline tracker, labelled honestly.

    Codecarbon's result has no field saying measured or estimated; we derive it from its CPU mode:
    RAPL / powermetrics / Power Gadget are measurements, "cpu_load" and "constant" are estimates.
    Its RAM figure is always a model. No file is written, nothing is sent anywhere.
    """
    import logging
    import warnings

    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    result = Measurement(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = OfflineEmissionsTracker(
            country_iso_code=country_iso_code, save_to_file=False, log_level="error",
            project_name=name,
        )
    tracker.start()  # ~1.3 s the first time in a process: kept out of the window
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        tracker.stop()
        time_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        data = tracker.final_emissions_data
        cpu_mode = next(
            (getattr(h, "_mode", "") for h in getattr(tracker, "_hardware", [])
             if type(h).__name__ == "CPU"), "")
        cpu_kind = "measured" if cpu_mode in ("intel_rapl", "apple_powermetrics",
                                              "intel_power_gadget") else "estimated"
        parts = (
            Part("cpu", data.cpu_energy * J_PER_KWH, cpu_kind, f"codecarbon:{cpu_mode or 'unknown'}"),
            Part("ram", data.ram_energy * J_PER_KWH, "estimated", "codecarbon:ram-model"),
            Part("gpu", data.gpu_energy * J_PER_KWH, "measured" if data.gpu_energy else "unavailable",
                 "codecarbon:nvml"),
        )
        energy = data.energy_consumed * J_PER_KWH
        kinds = {p.kind for p in parts if p.kind != "unavailable" and p.energy_j}
        result.__dict__.update(Measurement(
            name=name, time_s=time_s, cpu_time_s=cpu_s, energy_j=energy, source="codecarbon",
            kind="mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "estimated"),
            energy_j_low=math.nan, energy_j_high=math.nan, estimate_j=math.nan,
            power_model=f"codecarbon {cpu_mode} mode; RAM {data.ram_power:.3g} W model",
            parts=parts,
            warnings=("codecarbon skips its final reading when the last is < 50 ms old: "
                      "short blocks read near zero",) if time_s < 1 else (),
        ).__dict__)
