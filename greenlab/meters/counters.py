"""Energy counters (RAPL under powercap, NVML) and the process clocks a window reads.

A counter is probed once: each file is read *and parsed*, and a domain that cannot be is left out
with its reason. Later reads never raise: a reading that fails gives a string saying why. A delta is
accepted only if it is physically possible for the window: never negative, inside the counter's
range, and below ``PLAUSIBLE_FACTOR`` x the domain's power limit (``constraint_*_max_power_uw``,
NVML's power limit) or a generous default when the domain states none, over the window plus the
counter's update slack. So a counter that steps back by 1 µJ is not read as a full wrap-around;
a real wrap still is, as long as the window is shorter than range / cap (about 2 minutes for a
262 kJ Intel package counter under the 2 kW default cap).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

PLAUSIBLE_FACTOR = 10.0  # x the stated limit: covers turbo bursts (PL2/PL4), rejects glitches
RAPL_DEFAULT_MAX_W = 2000.0  # no stated limit: ~4x the largest server CPU package (500 W TDP)
RAPL_SLACK_S = 0.005  # RAPL updates about every 1 ms; a reading may lag by one update
NVML_DEFAULT_MAX_W = 10000.0  # ~7x the largest data-centre GPU's board power
NVML_SLACK_S = 0.1  # NVML's energy counter updates every few tens of ms

NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/usr/lib/wsl/lib")  # Linux, WSL2
Reading = float | str  # a counter value, or why it could not be read


def _parse_uj(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


class Domain(NamedTuple):
    """One RAPL domain: ``label`` like ``package-0`` or ``dram-0``; ``part`` is cpu or dram."""

    label: str
    part: str
    path: Path
    max_uj: int
    max_power_w: float  # the plausibility cap
    cap_origin: str


def plausible_j(joules: float, time_s: float, cap_w: float, slack_s: float) -> str | None:
    """None if ``joules`` over ``time_s`` fits under ``cap_w``; else why it cannot be real."""
    limit_j = cap_w * (max(time_s, 0.0) + slack_s)
    if joules <= limit_j:
        return None
    return (f"{joules:.4g} J in {time_s * 1e3:.3g} ms is impossible for a part that draws at most "
            f"~{cap_w:.4g} W")


class Rapl:
    """Package and DRAM domains under a powercap root, deduplicated, with wrap-around."""

    def __init__(self, domains: list[Domain], skipped: list[str]):
        self.domains = domains
        self.skipped = skipped  # "zone: why" for each wanted domain left out

    @classmethod
    def probe(cls, root: str | Path) -> tuple[Rapl | None, str]:
        """The usable domains under ``root`` and a status line (``readable: ...`` when any)."""
        root = Path(root)
        if not root.is_dir():
            return None, f"{root} not present (no RAPL on this machine or kernel)"
        domains, seen_names, skipped, denied = [], set(), [], False
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
                energy_text = (zone / "energy_uj").read_text()
                range_text = (zone / "max_energy_range_uj").read_text()
            except PermissionError:
                denied = True
                continue
            except OSError as exc:
                skipped.append(f"{zone.name}: {exc.strerror or exc}")
                continue
            energy, max_uj = _parse_uj(energy_text), _parse_uj(range_text)
            if energy is None or max_uj is None or max_uj == 0:
                bad = "energy_uj" if energy is None else "max_energy_range_uj"
                text = energy_text if energy is None else range_text
                skipped.append(f"{zone.name}: {bad} reads {text.strip()!r}, not a number of µJ")
                continue
            if energy > max_uj:
                skipped.append(f"{zone.name}: energy_uj {energy} exceeds max_energy_range_uj {max_uj}")
                continue
            seen_names.add(name)
            label = f"{name}-{zone.name.split(':')[1]}" if name == "dram" else name
            cap_w, origin = _power_cap(zone)
            domains.append(Domain(label, "dram" if name == "dram" else "cpu", zone / "energy_uj",
                                  max_uj, cap_w, origin))
        if not domains:
            if denied:
                why = ("RAPL counters exist but are readable only by root (Linux >= 5.10); "
                       "ask an admin for read access to energy_uj")
            elif skipped:
                why = "no usable RAPL domain: " + "; ".join(skipped)
            else:
                why = "no package/dram RAPL domain found"
            return None, why
        status = "readable: " + ", ".join(d.label for d in domains)
        if skipped:
            status += " (skipped " + "; ".join(skipped) + ")"
        return cls(domains, skipped), status

    def read(self) -> dict[str, Reading]:
        out: dict[str, Reading] = {}
        for d in self.domains:
            try:
                text = d.path.read_text()
            except OSError as exc:
                out[d.label] = f"unreadable ({type(exc).__name__}: {exc.strerror or exc})"
                continue
            value = _parse_uj(text)
            out[d.label] = float(value) if value is not None else f"read {text.strip()!r}"
        return out

    @staticmethod
    def delta_j(d: Domain, start: Reading, stop: Reading, time_s: float) -> tuple[float | None, str]:
        """The energy of domain ``d`` over the window, or None and why it is not believable."""
        for edge, value in (("start", start), ("end", stop)):
            if isinstance(value, str):
                return None, f"rapl:{d.label} {value} at the window's {edge}"
            if value > d.max_uj:
                return None, (f"rapl:{d.label} read {value:.0f} µJ at the window's {edge}, outside "
                              f"its range 0-{d.max_uj} µJ (max_energy_range_uj is wrong)")
        diff, wrapped = stop - start, stop < start
        if wrapped:
            diff += d.max_uj
        joules = diff / 1e6
        why = plausible_j(joules, time_s, d.max_power_w, RAPL_SLACK_S)
        if why:
            how = " (read as a wrap-around: the counter stepped back or was reset)" if wrapped else ""
            return None, f"rapl:{d.label}: {why} ({d.cap_origin}){how}"
        return joules, ""


def _power_cap(zone: Path) -> tuple[float, str]:
    """The plausibility cap of a zone: PLAUSIBLE_FACTOR x its largest stated max power."""
    stated = []
    for f in zone.glob("constraint_*_max_power_uw"):
        try:
            value = _parse_uj(f.read_text())
        except OSError:
            continue
        if value:
            stated.append(value / 1e6)
    if stated:
        return PLAUSIBLE_FACTOR * max(stated), f"{PLAUSIBLE_FACTOR:g} x its stated {max(stated):g} W"
    return RAPL_DEFAULT_MAX_W, f"no stated limit: default cap {RAPL_DEFAULT_MAX_W:g} W"


class Nvml:
    """NVIDIA GPUs' total-energy counters (mJ since the driver loaded), one part per GPU."""

    def __init__(self, pynvml, handles, caps_w: list[float]):
        self.pynvml, self.handles, self.caps_w = pynvml, handles, caps_w

    @classmethod
    def probe(cls) -> tuple[Nvml | None, str]:
        if sys.platform == "linux" and not any(os.path.exists(p) for p in NVIDIA_DRIVER_PATHS):
            return None, "no NVIDIA driver loaded (no /proc/driver/nvidia)"  # skips a 30 ms import
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
        caps = []
        for h in handles:
            try:
                limit_w = pynvml.nvmlDeviceGetPowerManagementLimitConstraints(h)[1] / 1e3
            except Exception:
                limit_w = 0.0
            caps.append(PLAUSIBLE_FACTOR * limit_w if limit_w > 0 else NVML_DEFAULT_MAX_W)
        return cls(pynvml, handles, caps), f"readable: {len(handles)} GPU(s)"

    def read(self) -> dict[str, Reading]:
        out: dict[str, Reading] = {}
        for i, h in enumerate(self.handles):
            try:
                out[f"gpu:{i}"] = float(self.pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
            except Exception as exc:
                out[f"gpu:{i}"] = f"unreadable ({type(exc).__name__})"
        return out

    def delta_j(self, label: str, start: Reading, stop: Reading,
                time_s: float) -> tuple[float | None, str]:
        for edge, value in (("start", start), ("end", stop)):
            if isinstance(value, str):
                return None, f"nvml:{label} {value} at the window's {edge}"
        joules = (stop - start) / 1e3  # mJ -> J
        if joules < 0:
            return None, f"nvml:{label} went back by {-joules:.4g} J (the driver was reloaded?)"
        cap_w = self.caps_w[int(label.split(":")[1])]
        why = plausible_j(joules, time_s, cap_w, NVML_SLACK_S)
        return (None, f"nvml:{label}: {why}") if why else (joules, "")


def children_cpu_s() -> float:
    """CPU seconds of this process's child processes that have ended and been waited for."""
    t = os.times()
    return t.children_user + t.children_system


def sync_frameworks() -> None:
    """Wait for GPU work queued by frameworks this process has *already* imported (never imports
    one): today torch's CUDA streams, once CUDA is initialized."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
    except Exception:  # a half-imported or broken torch: measuring must go on
        pass
