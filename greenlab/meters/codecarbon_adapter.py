"""Codecarbon's offline tracker behind greenlab's window, labelled measured or estimated."""

from __future__ import annotations

import math
import time
import warnings

from .measurement import J_PER_KWH, Measurement, Part, combined_kind
from .meter import Window

MEASURING_MODES = ("intel_rapl", "apple_powermetrics", "intel_power_gadget")


class _Tracker:
    """One codecarbon tracker run; leaves codecarbon's logger as it found it."""

    def __init__(self, name: str, country_iso_code: str):
        self.name, self.country_iso_code = name, country_iso_code
        self.tracker = None

    def start(self) -> None:
        import logging

        from codecarbon import OfflineEmissionsTracker

        logger = logging.getLogger("codecarbon")
        self.saved = logger.level, list(logger.handlers)  # the tracker resets both
        logger.setLevel(logging.ERROR)  # its constructor logs "offline tracker init" before log_level
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country_iso_code, save_to_file=False,
                    log_level="error", project_name=self.name,
                )
            self.tracker.start()  # ~1.3 s the first time in a process: kept out of the window
        except BaseException:
            self._restore_logger()
            raise
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def _restore_logger(self) -> None:
        import logging

        logger = logging.getLogger("codecarbon")
        logger.setLevel(self.saved[0])
        logger.handlers = self.saved[1]

    def stop(self) -> Measurement:
        try:
            self.tracker.stop()
        finally:
            self._restore_logger()
        time_s, cpu_s = time.perf_counter() - self.t0, time.process_time() - self.c0
        data = self.tracker.final_emissions_data
        cpu_mode = next((getattr(h, "_mode", "") for h in getattr(self.tracker, "_hardware", [])
                         if type(h).__name__ == "CPU"), "")
        cpu_kind = "measured" if cpu_mode in MEASURING_MODES else "estimated"
        parts = (
            Part("cpu", data.cpu_energy * J_PER_KWH, cpu_kind, f"codecarbon:{cpu_mode or 'unknown'}"),
            Part("ram", data.ram_energy * J_PER_KWH, "estimated", "codecarbon:ram-model"),
            Part("gpu", data.gpu_energy * J_PER_KWH,
                 "measured" if data.gpu_energy else "unavailable", "codecarbon:nvml"),
        )
        kind = combined_kind([p for p in parts if p.energy_j])
        return Measurement(
            name=self.name, time_s=time_s, cpu_time_s=cpu_s,
            energy_j=data.energy_consumed * J_PER_KWH, source="codecarbon",
            kind=kind if kind != "unavailable" else "estimated",
            energy_j_low=math.nan, energy_j_high=math.nan, estimate_j=math.nan,
            power_model=f"codecarbon {cpu_mode} mode; RAM {data.ram_power:.3g} W model",
            parts=parts,
            warnings=("codecarbon skips its final reading when the last is < 50 ms old: "
                      "short blocks read near zero",) if time_s < 1 else (),
        )


def codecarbon_measure(name: str, country_iso_code: str = "USA") -> Window:
    """``with codecarbon_measure("x") as m:`` -- a block measured by codecarbon's offline tracker.

    Codecarbon's result has no field saying measured or estimated; we derive it from its CPU mode:
    RAPL / powermetrics / Power Gadget are measurements, "cpu_load" and "constant" are estimates.
    Its RAM figure is always a model. No file is written, nothing is sent anywhere; the
    ``codecarbon`` logger's level and handlers are restored when the block ends.
    """
    run = _Tracker(name, country_iso_code)
    return Window(name, run.start, run.stop)
