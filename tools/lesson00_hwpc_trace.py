"""Write lesson 00's *synthetic* HWPC sensor trace, the input PowerAPI's SmartWatts formula reads.

PowerAPI measures per-process power in two parts: the ``hwpc-sensor`` reads hardware performance
counters (per process group) and RAPL (per socket) every second, and the SmartWatts formula fits
RAPL power against the counters (a positive ElasticNet per CPU frequency) and splits the package
power between processes. The sensor needs perf events and RAPL on bare metal; the machines this
course runs on (CI, Binder, Colab) have neither, and PowerAPI's own real traces are 2 ticks long,
too short for SmartWatts' warm-up (5 ticks buffered, 10 samples before a first model, 60 before it
fits an intercept). So this script *generates* a trace from a known power model, and the lesson
runs the real formula on it and compares its answer with the truth the trace was made from.

Nothing here is a measurement of any machine. The synthetic machine: 1 socket, 4 logical CPUs at a
constant 2.1 GHz, static (idle) package power ``STATIC_W``, and three process groups whose dynamic
power is linear in their counters (``W_PER_GCYCLE`` per 10^9 unhalted cycles, ``W_PER_MLLC`` per
10^6 last-level-cache misses), plus Gaussian noise ``NOISE_W`` on the RAPL reading. Seeded: the
same files every run.

Usage::

    python tools/lesson00_hwpc_trace.py                      # writes data/lesson00/hwpc/*.csv
    python tools/lesson00_hwpc_trace.py --smartwatts PYTHON  # then runs SmartWatts with PYTHON
                                                             # (an interpreter that has smartwatts)

Files (in ``--out``): ``rapl.csv``, ``msr.csv``, ``core.csv`` (PowerAPI's HWPCReport CSV layout,
rows sorted by time then target, ``all`` = the whole socket), ``truth.csv`` (the generator's true
power per tick and target) and, with ``--smartwatts``, ``smartwatts/PowerReport.csv``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "lesson00" / "hwpc"
SEED = 0
TICKS = 150  # seconds, one report per second
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, an arbitrary fixed origin
SENSOR = "synthetic-hwpc"
CPUS = 4
BASE_MHZ = 2100
STATIC_W = 6.0  # idle package power: paid whether or not anything runs
W_PER_GCYCLE = 2.0  # dynamic W per 10^9 unhalted cycles in a 1 s tick
W_PER_MLLC = 0.5  # dynamic W per 10^6 LLC misses in a 1 s tick
NOISE_W = 0.3  # sd of the RAPL reading's noise
# SmartWatts options that describe this synthetic CPU (python -m smartwatts ...)
SMARTWATTS_ARGS = ["--disable-dram-formula", "--cpu-base-freq", str(BASE_MHZ), "--cpu-tdp", "30",
                   "--cpu-base-clock", "100", "--sensor-reports-frequency", "1000"]


def loads(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per target, (unhalted cycles, LLC misses) per tick: a notebook, a training run, a backup."""
    t = np.arange(TICKS)
    hz = BASE_MHZ * 1e6
    on = {"notebook": np.ones(TICKS, bool),  # always open; training in two runs; a nightly backup
          "train": ((t >= 15) & (t < 45)) | ((t >= 75) & (t < 135)), "backup": (t >= 45) & (t < 135)}
    util = {  # fraction of one CPU busy: a noisy notebook, 2 busy cores, a bursty backup
        "notebook": 0.05 + 0.25 * (rng.random(TICKS) < 0.3),
        "train": 1.9 + 0.1 * rng.standard_normal(TICKS),
        "backup": 0.4 + 0.3 * np.sin(t / 7.0) ** 2,
    }
    llc_per_gcycle = {"notebook": 0.3, "train": 0.8, "backup": 6.0}  # 10^6 misses per 10^9 cycles
    out = {}
    for name in on:
        cycles = np.where(on[name], np.clip(util[name], 0.0, CPUS) * hz, 0.0)
        llc = cycles / 1e9 * llc_per_gcycle[name] * 1e6 * rng.uniform(0.8, 1.2, TICKS)
        out[name] = (cycles, llc)
    return out


def generate(out: Path, seed: int = SEED) -> None:
    """Write rapl.csv, msr.csv, core.csv and truth.csv of the synthetic machine into ``out``."""
    rng = np.random.default_rng(seed)
    targets = loads(rng)
    dyn_w = {n: W_PER_GCYCLE * c / 1e9 + W_PER_MLLC * m / 1e6 for n, (c, m) in targets.items()}
    total_dyn = sum(dyn_w.values())
    pkg_w = STATIC_W + total_dyn + NOISE_W * rng.standard_normal(TICKS)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[list]] = {"rapl": [], "msr": [], "core": [], "truth": []}
    window_ns = 1_000_000_000
    for k in range(TICKS):
        ts = START_MS + 1000 * k
        rows["rapl"].append([ts, SENSOR, "all", 0, 0, int(pkg_w[k] * 2**32), window_ns, window_ns])
        busy = sum(c[k] for c, _ in targets.values()) / CPUS
        for cpu in range(CPUS):  # constant frequency: APERF == MPERF (both count unhalted cycles)
            mperf = int(busy * rng.uniform(0.9, 1.1)) + 1000
            rows["msr"].append([ts, SENSOR, "all", 0, cpu, mperf, mperf, BASE_MHZ * 10**6,
                                window_ns, window_ns])
        for name in sorted(targets):
            cycles, llc = targets[name][0][k], targets[name][1][k]
            share = rng.dirichlet(np.ones(CPUS))  # how the group's work spread over the CPUs
            for cpu in range(CPUS):
                c = int(cycles * share[cpu])
                rows["core"].append([ts, SENSOR, name, 0, cpu, c, c, int(1.5 * c),
                                     int(llc * share[cpu]), window_ns, window_ns])
            share_w = STATIC_W * dyn_w[name][k] / total_dyn[k] if total_dyn[k] > 0 else 0.0
            rows["truth"].append([ts, name, round(dyn_w[name][k], 4),
                                  round(dyn_w[name][k] + share_w, 4)])
        rows["truth"].append([ts, "package", round(total_dyn[k], 4), round(pkg_w[k], 4)])
    common = ["timestamp", "sensor", "target", "socket", "cpu"]
    headers = {
        "rapl": common + ["RAPL_ENERGY_PKG", "time_enabled", "time_running"],
        "msr": common + ["APERF", "MPERF", "TSC", "time_enabled", "time_running"],
        "core": common + ["CPU_CLK_THREAD_UNHALTED:REF_P", "CPU_CLK_THREAD_UNHALTED:THREAD_P",
                          "INSTRUCTIONS_RETIRED", "LLC_MISSES", "time_enabled", "time_running"],
        "truth": ["timestamp", "target", "dynamic_w", "power_w"],  # power_w: + share of static
    }
    for name, header in headers.items():
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows[name])


def run_smartwatts(trace: Path, python: str, out: Path) -> Path:
    """Run the real SmartWatts formula (``python -m smartwatts``) on ``trace``; the PowerReport
    CSV of every target, concatenated and sorted, lands in ``out/PowerReport.csv``."""
    with tempfile.TemporaryDirectory() as tmp:
        files = ",".join(str(trace / f"{n}.csv") for n in ("rapl", "msr", "core"))  # core last
        cmd = [python, "-m", "smartwatts", "--input", "csv", "--model", "HWPCReport",
               "--files", files, "--output", "csv", "--model", "PowerReport",
               "--directory", tmp + "/", *SMARTWATTS_ARGS]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        reports = sorted(Path(tmp).glob("*/PowerReport.csv"))
        if not reports:
            raise RuntimeError("smartwatts wrote no PowerReport.csv")
        lines, header = [], None
        for path in reports:
            with open(path) as f:
                reader = csv.reader(f)
                header = next(reader)
                lines += list(reader)
        lines.sort(key=lambda r: (int(r[0]), r[2]))
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "PowerReport.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(lines)
    return out / "PowerReport.csv"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--smartwatts", metavar="PYTHON",
                    help="an interpreter with smartwatts installed: also run the formula")
    args = ap.parse_args(argv)
    generate(args.out, args.seed)
    print(f"wrote {args.out}/{{rapl,msr,core,truth}}.csv ({TICKS} ticks, seed {args.seed})")
    if args.smartwatts:
        if shutil.which(args.smartwatts) is None and not Path(args.smartwatts).exists():
            ap.error(f"--smartwatts: no interpreter {args.smartwatts!r}")
        print("wrote", run_smartwatts(args.out, args.smartwatts, args.out / "smartwatts"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
