"""Energy meters that say what they measured and what they only estimated.

One small API, shaped like Zeus's ``begin_window`` / ``end_window``::

    with greenlab.measure("mlp-train") as m:
        train(model, data)
    m.energy_j, m.time_s, m.source, m.kind      # kind: "measured" | "estimated" | "mixed"

``m`` is a :class:`Window`: it reads like the block's immutable :class:`Measurement` once the block
has ended, and raises if read before. ``Meter.begin(name)`` / ``Meter.end(name)`` return the
Measurement directly. Sources, tried in this order for each part of the machine:

* ``nvml``      GPU energy counter (``nvmlDeviceGetTotalEnergyConsumption``), measured.
* ``rapl``      CPU package and DRAM counters in ``/sys/class/powercap``, measured.
* ``codecarbon`` only where it can *measure* the CPU and RAPL cannot (macOS powermetrics,
  Windows Intel Power Gadget); on Linux without RAPL it would only estimate, so we do not pretend.
* ``estimate``  CPU time of this process (and of child processes it waited for) x an assumed power
  per busy core (:class:`PowerModel`).

Counters are probed once, when a :class:`Meter` is built; ``begin``/``end`` then only read numbers
(microseconds), start no thread, import no framework (a GPU framework already imported is
synchronized at both edges), and never raise for a counter: one that fails or reads impossibly
becomes an estimated or unavailable part with its reason. Every result carries, per part, its
energy, whether it was measured or estimated, its source, and the assumptions of any estimate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .codecarbon_adapter import codecarbon_measure
from .measurement import J_PER_KWH, KINDS, Measurement, Part, PowerModel
from .meter import SOURCES, Meter, ReplayMeter, Window

__all__ = [
    "Measurement",
    "Part",
    "PowerModel",
    "Meter",
    "ReplayMeter",
    "Window",
    "measure",
    "default_meter",
    "available_sources",
    "codecarbon_measure",
    "overhead",
    "J_PER_KWH",
    "KINDS",
    "SOURCES",
]

_default: Meter | None = None


def default_meter() -> Meter:
    """The process's shared meter, built (and its counters probed) on first use."""
    global _default
    if _default is None:
        _default = Meter()
    return _default


def measure(name: str, meter: Meter | None = None) -> Window:
    """``with greenlab.measure("x") as m:`` using ``meter`` or the default meter."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string (the window's label), got {type(name).__name__}")
    if meter is not None and not isinstance(meter, Meter):
        raise TypeError(f"meter must be a greenlab Meter, got {type(meter).__name__}")
    return (meter or default_meter()).measure(name)


def available_sources(powercap_root: str | Path = "/sys/class/powercap") -> dict[str, str]:
    """Each source and whether it can be used here, with the reason."""
    return Meter(powercap_root=powercap_root).status


def _windows_ms(open_window, windows: int) -> tuple[float, list[float], Measurement]:
    """First start (ms), then start+stop of each later empty window (ms), and the last result."""
    t0 = time.perf_counter()
    first = open_window("overhead-0")
    first.__enter__()
    first_ms = (time.perf_counter() - t0) * 1e3
    first.__exit__(None, None, None)
    later = []
    for i in range(1, windows):
        t0 = time.perf_counter()
        with open_window(f"overhead-{i}") as last:
            pass
        later.append((time.perf_counter() - t0) * 1e3)
    return first_ms, later, (last if later else first).result


def overhead(windows: int = 200, codecarbon_windows: int = 0) -> dict:
    """What measuring costs here: empty windows timed with greenlab's meter (and codecarbon's).

    greenlab's first start builds a fresh :class:`Meter` (probing its counters) and opens its first
    window: in a fresh process that is what the first ``gl.measure`` costs. Run it in a fresh
    process (``python -c "import greenlab.meters as m; print(m.overhead())"``) for that number.

    Returns:
        ``greenlab_first_start_ms``, ``greenlab_median_start_stop_ms`` (over ``windows - 1``),
        ``greenlab_source`` / ``greenlab_kind`` / ``greenlab_energy_j`` of the last empty window,
        ``torch_imported`` (whether torch was in the process), and with ``codecarbon_windows`` >= 2
        the same ``codecarbon_*`` keys (its first start includes importing codecarbon).
    """
    for arg, value, least in (("windows", windows, 2), ("codecarbon_windows", codecarbon_windows, 0)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
        if value < least or (arg == "codecarbon_windows" and value == 1):
            raise ValueError(f"{arg} must be {'0 or ' if least == 0 else ''}>= 2, got {value}")
    import statistics

    meter: list[Meter] = []

    def fresh(name: str) -> Window:
        if not meter:
            meter.append(Meter())
        return meter[0].measure(name)

    out: dict = {}
    runs = [("greenlab", fresh, windows)]
    if codecarbon_windows:
        runs.append(("codecarbon", codecarbon_measure, codecarbon_windows))
    for label, open_window, n in runs:
        first_ms, later, last = _windows_ms(open_window, n)
        out.update({f"{label}_first_start_ms": first_ms,
                    f"{label}_median_start_stop_ms": statistics.median(later),
                    f"{label}_windows": n, f"{label}_source": last.source,
                    f"{label}_kind": last.kind, f"{label}_energy_j": last.energy_j})
    out["torch_imported"] = "torch" in sys.modules
    return out
