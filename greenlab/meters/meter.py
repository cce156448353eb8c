"""Windows: :class:`Meter` (``begin``/``end``, nestable), the ``with`` handle :class:`Window`, and
the deterministic :class:`ReplayMeter`."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .counters import Nvml, Rapl, Reading, children_cpu_s, sync_frameworks
from .measurement import FIELDS, Measurement, Part, PowerModel, combined_kind

SOURCES = ("nvml", "rapl", "codecarbon", "estimate")
RAPL_MIN_WINDOW_S = 0.01  # RAPL updates about every 1 ms: fewer than ~10 updates is noise
ESTIMATE_MIN_CPU_S = 0.02  # below this, CPU-time accounting granularity dominates


def codecarbon_can_measure(platform: str = sys.platform) -> str | None:
    """Codecarbon measures the CPU only through OS tools outside Linux powercap."""
    return {"darwin": "macOS powermetrics (needs sudo)",
            "win32": "Intel Power Gadget (if installed)"}.get(platform)


class Window:
    """What ``with meter.measure(name) as m:`` gives: a handle that reads like the window's
    :class:`Measurement` once the block has ended (``m.energy_j``, ``m.kind``, ``str(m)``, ...).

    Reading a field inside the block raises ``RuntimeError`` (the energy is not known yet);
    ``m.result`` is the immutable Measurement itself. ``isinstance(m, Measurement)`` is true, so
    code that takes a Measurement (``gl.log(measurement=m)``) takes the handle. An exception in
    the block always propagates unchanged; were closing the window to fail as well, that failure
    is added to it as a note instead of replacing it.
    """

    __slots__ = ("name", "_open", "_close", "_result", "_state")

    def __init__(self, name: str, open_: Callable[[], None], close: Callable[[], Measurement]):
        self.name, self._open, self._close = name, open_, close
        self._result: Measurement | None = None
        self._state = "new"

    def __enter__(self) -> Window:
        if self._state != "new":
            raise RuntimeError(f"the window {self.name!r} can be entered once; call measure() again")
        self._open()
        self._state = "open"
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._state = "closed"
        try:
            self._result = self._close()
        except Exception as err:
            if exc is None:
                raise
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note(f"greenlab: closing the window {self.name!r} failed too: "
                             f"{type(err).__name__}: {err}")
        return False

    @property
    def result(self) -> Measurement:
        """The window's Measurement; RuntimeError while the block is still running."""
        if self._result is None:
            raise RuntimeError(self._pending("the result"))
        return self._result

    def _pending(self, what: str) -> str:
        if self._state == "closed":
            return f"{what} of {self.name!r} is missing: closing the window failed"
        return (f"{what} of {self.name!r} is known when the with-block ends; "
                "read it after the block")

    def __getattr__(self, attr: str):
        if attr not in FIELDS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        if self._result is None:
            raise RuntimeError(self._pending(attr))
        return getattr(self._result, attr)

    def __str__(self) -> str:
        return str(self._result) if self._result is not None else f"{self.name}: (still measuring)"

    def __repr__(self) -> str:
        return f"Window({self._result!r})" if self._result is not None else f"Window({self.name!r})"


Measurement.register(Window)


class _Snapshot(NamedTuple):
    time_s: float
    cpu_s: float
    child_cpu_s: float
    rapl: dict[str, Reading] | None
    nvml: dict[str, Reading] | None


class Meter:
    """Measures named windows; ``begin``/``end`` nest, and never raise for a counter.

    A counter that cannot be read, or gives a reading impossible for the window, makes its part
    ``estimated`` (CPU) or ``unavailable`` (DRAM, GPU), with the reason in the part's ``note``, in
    the result's ``warnings`` and as a ``RuntimeWarning``. The CPU estimate counts this process and
    its child processes that ended and were waited for inside the window (``child_cpu_time_s``);
    children still running, other processes and devices are not counted.

    Args:
        sources: which sources to try, in order (subset of :data:`SOURCES`).
        power_model: assumptions for the CPU estimate (default: :meth:`PowerModel.from_env`).
        powercap_root: where RAPL lives (a fake folder in tests).
        clock, cpu_clock, child_cpu_clock: wall, process and waited-children CPU seconds
            (injectable for tests).
    """

    def __init__(
        self,
        sources: Sequence[str] = SOURCES,
        power_model: PowerModel | None = None,
        powercap_root: str | Path = "/sys/class/powercap",
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
        child_cpu_clock: Callable[[], float] = children_cpu_s,
    ):
        if isinstance(sources, str):
            raise TypeError("sources must be a sequence of source names, not a single string")
        unknown = [s for s in sources if s not in SOURCES]
        if unknown or not sources:
            raise ValueError(f"sources must be a non-empty subset of {SOURCES}, got {list(sources)}")
        if power_model is not None and not isinstance(power_model, PowerModel):
            raise TypeError(f"power_model must be a PowerModel, got {type(power_model).__name__}")
        self.sources = tuple(sources)
        self.power_model = power_model or PowerModel.from_env()
        self._clock, self._cpu_clock, self._child_clock = clock, cpu_clock, child_cpu_clock
        self._open: dict[str, _Snapshot] = {}
        self.status: dict[str, str] = {}
        self._rapl: Rapl | None = None
        self._nvml: Nvml | None = None
        if "nvml" in self.sources:
            self._nvml, self.status["nvml"] = Nvml.probe()
        if "rapl" in self.sources:
            self._rapl, self.status["rapl"] = Rapl.probe(powercap_root)
        if "codecarbon" in self.sources:
            how = codecarbon_can_measure() if self._rapl is None else None
            self.status["codecarbon"] = (
                f"may measure via {how}: use codecarbon_measure()"
                if how
                else "not used: on this OS it can measure nothing greenlab cannot read itself"
            )
        if "estimate" in self.sources:
            self.status["estimate"] = "always: " + self.power_model.describe()

    # -- windows
    def _counters(self) -> tuple[dict[str, Reading] | None, dict[str, Reading] | None]:
        return (self._rapl.read() if self._rapl else None,
                self._nvml.read() if self._nvml else None)

    def begin(self, name: str) -> None:
        """Open a window called ``name`` (windows may nest; names must differ)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if name in self._open:
            raise ValueError(f"a window named {name!r} is already open; end it or pick another name")
        self._open[name] = self._opening_snapshot()

    def _opening_snapshot(self) -> _Snapshot:
        sync_frameworks()  # queued GPU work belongs before the window
        t, c, cc = self._clock(), self._cpu_clock(), self._child_clock()
        rapl, nvml = self._counters()  # clocks first, counters last: the window holds them
        return _Snapshot(t, c, cc, rapl, nvml)

    def _take(self, name: str) -> _Snapshot:
        if name not in self._open:
            raise ValueError(f"no open window named {name!r}; open ones: {sorted(self._open)}")
        return self._open.pop(name)

    def end(self, name: str) -> Measurement:
        """Close the window ``name`` and return its immutable :class:`Measurement`."""
        start = self._take(name)
        sync_frameworks()  # the window's GPU work, finished
        rapl, nvml = self._counters()
        stop = _Snapshot(self._clock(), self._cpu_clock(), self._child_clock(), rapl, nvml)
        return self._result(name, start, stop)

    def cancel(self, name: str) -> None:
        """Drop the open window ``name`` without a result."""
        self._take(name)

    def measure(self, name: str) -> Window:
        """``with meter.measure("x") as m:`` -- ``m`` reads like a Measurement after the block."""
        return Window(name, lambda: self.begin(name), lambda: self.end(name))

    # -- assembling the result
    def _result(self, name: str, start: _Snapshot, stop: _Snapshot) -> Measurement:
        time_s = stop.time_s - start.time_s
        cpu_s, child_s = stop.cpu_s - start.cpu_s, stop.child_cpu_s - start.child_cpu_s
        busy_s, pm = cpu_s + child_s, self.power_model
        problems: list[str] = []  # counters not believed, each with its reason
        notes: list[str] = []  # how far to trust what was believed
        packages, drams, cpu_why = self._rapl_parts(start, stop, time_s, problems)
        if packages is None:  # no package counter, or one not believed: the CPU is estimated
            why = cpu_why or self.status.get("rapl", "")
            if "estimate" in self.sources:
                note = "process CPU time; excludes DRAM, idle power and other processes"
                packages = [Part("cpu", busy_s * pm.watts_per_core, "estimated",
                                 "model:cpu_time_s*W", f"{note} ({why})" if cpu_why else note)]
                notes += self._estimate_notes(time_s, cpu_s, child_s)
            else:
                packages = [Part("cpu", None, "unavailable", "none", why)]
        elif time_s < RAPL_MIN_WINDOW_S:
            notes.append(f"window of {time_s * 1e3:.2f} ms is shorter than ~10 RAPL updates; "
                         "repeat the work inside the window and divide")
        parts = packages + drams + self._nvml_parts(start, stop, time_s, problems)
        for why in problems:
            warnings.warn(f"greenlab window {name!r}: {why}; that part is not measured",
                          RuntimeWarning, stacklevel=3)
        families = []
        for p in parts:
            fam = p.source.split(":")[0].replace("model", "estimate")
            if p.kind != "unavailable" and fam not in families:
                families.append(fam)
        energy = [p.energy_j for p in parts if p.energy_j is not None]
        measured_j = sum(p.energy_j for p in parts if p.kind == "measured")
        estimated = any(p.kind == "estimated" for p in parts)
        return Measurement(
            name=name, time_s=time_s, cpu_time_s=cpu_s, child_cpu_time_s=child_s,
            energy_j=sum(energy) if energy else math.nan,
            source="+".join(families) or "none", kind=combined_kind(parts),
            energy_j_low=measured_j + estimated * busy_s * pm.low_w if energy else math.nan,
            energy_j_high=measured_j + estimated * busy_s * pm.high_w if energy else math.nan,
            estimate_j=busy_s * pm.watts_per_core,
            power_model=pm.describe() if estimated else None,
            parts=tuple(parts),
            warnings=tuple(f"{why}; that part is not measured" for why in problems) + tuple(notes),
        )

    def _rapl_parts(self, start: _Snapshot, stop: _Snapshot, time_s: float,
                    problems: list[str]) -> tuple[list[Part] | None, list[Part], str]:
        """Measured package parts (None unless every package counter is believed), DRAM parts, and
        why the packages were not; appends each counter not believed to ``problems``."""
        if not self._rapl:
            return None, [], ""
        packages: list[Part] | None = []
        drams, cpu_why = [], []
        for d in self._rapl.domains:
            joules, why = Rapl.delta_j(d, start.rapl[d.label], stop.rapl[d.label], time_s)
            if why:
                problems.append(why)
            if d.part == "dram":
                drams.append(Part("dram", None, "unavailable", f"rapl:{d.label}", why) if why
                             else Part("dram", joules, "measured", f"rapl:{d.label}"))
            elif why:
                packages = None
                cpu_why.append(why)
            elif packages is not None:
                packages.append(Part("cpu", joules, "measured", f"rapl:{d.label}"))
        return packages or None, drams, "; ".join(cpu_why)

    def _nvml_parts(self, start: _Snapshot, stop: _Snapshot, time_s: float,
                    problems: list[str]) -> list[Part]:
        if not self._nvml:
            return []
        parts = []
        for label in start.nvml:
            joules, why = self._nvml.delta_j(label, start.nvml[label], stop.nvml[label], time_s)
            if why:
                problems.append(why)
            parts.append(Part(label, None, "unavailable", f"nvml:{label}", why) if why
                         else Part(label, joules, "measured", f"nvml:{label}"))
        return parts

    @staticmethod
    def _estimate_notes(time_s: float, cpu_s: float, child_s: float) -> list[str]:
        busy_s = cpu_s + child_s
        if busy_s >= ESTIMATE_MIN_CPU_S and busy_s >= 0.1 * time_s:
            return []
        return [f"only {busy_s * 1e3:.1f} ms of CPU time in {time_s * 1e3:.1f} ms: the estimate "
                "counts this process and its child processes that ended inside the window, not "
                "child processes still running, other processes or a GPU; for short work, "
                "repeat it and divide"]


class ReplayMeter(Meter):
    """A deterministic meter for tests and examples: replays ``(time_s, cpu_time_s)`` per window.

    Energy follows the power model (``estimated``), or ``counter_w`` watts as if ``measured``.
    """

    def __init__(self, windows: Sequence[tuple[float, float]], counter_w: float | None = None,
                 power_model: PowerModel | None = None):
        super().__init__(sources=("estimate",), power_model=power_model or PowerModel())
        self._replay = list(windows)
        self.counter_w = counter_w

    def _opening_snapshot(self) -> _Snapshot:
        return _Snapshot(0.0, 0.0, 0.0, None, None)

    def end(self, name: str) -> Measurement:
        start = self._take(name)
        if not self._replay:
            raise ValueError("ReplayMeter ran out of recorded windows")
        time_s, cpu_s = self._replay.pop(0)
        if self.counter_w is None:
            return self._result(name, start, _Snapshot(time_s, cpu_s, 0.0, None, None))
        joules = self.counter_w * time_s
        return Measurement(
            name=name, time_s=time_s, cpu_time_s=cpu_s, energy_j=joules, source="replay",
            kind="measured", energy_j_low=joules, energy_j_high=joules,
            estimate_j=cpu_s * self.power_model.watts_per_core,
            parts=(Part("cpu", joules, "measured", "replay:counter"),),
        )
