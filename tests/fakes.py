"""Fakes and probes shared by several test modules: a powercap folder, process lookups, torch flags."""

from __future__ import annotations

import time

import psutil
import pytest
import torch


def fake_powercap(root, domains):
    """domains: {zone: (name, energy_uj, max_uj)} written like /sys/class/powercap."""
    for zone, (name, energy, max_uj) in domains.items():
        d = root / zone
        d.mkdir(parents=True, exist_ok=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return root


def set_energy(root, zone, value):
    """Write ``value`` (a number, or any text) as ``zone``'s ``energy_uj``."""
    (root / zone / "energy_uj").write_text(f"{value}\n")


def alive(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for p in psutil.process_iter():
        try:
            if marker in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            pass
    return found


def gone(marker: str, within_s: float = 15.0) -> bool:
    """True once no process carries ``marker`` (a killed process vanishes at once; this is a bound)."""
    deadline = time.monotonic() + within_s
    while alive(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(marker)


@pytest.fixture
def no_deterministic_algorithms():
    """Quantized kernels warn on every call under torch.use_deterministic_algorithms (gl.setup sets
    it): off for the test, restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before)
