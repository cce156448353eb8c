"""Benchmark the course in units of this machine: a reference workload R, then every notebook.

    python tools/bench.py [NB ...] [--out bench/course.md] [--meters-out bench/meters.md]
                          [--r-s SECONDS] [--no-meters | --meters-only]

1. R, the reference workload: 300 Adam steps of ``gl.models.cnn1d(channels=128)``, batch 128, on
   MNIST-1D, on the CPU with the thread count ``gl.setup`` gives the lessons (2); the median of 3
   runs after a warm-up, in a fresh process. ``--r-s`` gives R instead of timing it.
2. Every notebook in a fresh kernel (nbclient): wall time in seconds and in R, peak RSS. Budgets:
   each notebook <= 15 R and <= 1536 MiB, the whole course <= 150 R. Written with the CPU model,
   its ML instruction-set flags and core counts to ``--out``.
3. The meter table: greenlab's meter beside codecarbon's offline tracker on the same short block,
   in one fresh process that has not imported torch (``--meters-out``; ``--no-meters`` skips it,
   ``--meters-only`` writes only it).

A benchmark, not a test: it reports what is over budget, it does not fail because of it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_meters  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
BUDGET_NB_R, BUDGET_COURSE_R, BUDGET_MIB = 15.0, 150.0, 1536.0
R_STEPS, R_BATCH, R_CHANNELS, R_REPEATS, R_WARMUP_STEPS = 300, 128, 128, 3, 30
# /proc/cpuinfo flags that decide how fast torch, ONNX Runtime and TFLite kernels run here
ML_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
            "amx_int8")


# --------------------------------------------------------------------------- the machine (pure)

def parse_cpuinfo(text: str) -> dict:
    """CPU model, the :data:`ML_FLAGS` present and the number of logical CPUs in ``/proc/cpuinfo``
    text (x86 ``model name``/``flags``; Arm ``Features``/``CPU part`` where there is no model)."""
    model, flags, processors = None, set(), 0
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            processors += 1
        elif key in ("model name", "Hardware", "Model") and model is None and value:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"model": model or "unknown", "flags": [f for f in ML_FLAGS if f in flags],
            "logical_cpus": processors}


def parse_cgroup_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` ("quota period", or "max period": no limit)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        return int(parts[0]) / int(parts[1])
    except (ValueError, ZeroDivisionError):
        return None


def machine() -> dict:
    """This machine: CPU model and ML flags, logical / usable / physical cores, quota, RAM, load."""
    import psutil

    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = parse_cpuinfo(read("/proc/cpuinfo"))
    if cpu["model"] == "unknown":
        cpu["model"] = platform.processor() or platform.machine()
    return {**cpu, "arch": platform.machine(), "logical": os.cpu_count(),
            "usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "physical": psutil.cpu_count(logical=False),
            "quota_cpus": parse_cgroup_cpu_max(read("/sys/fs/cgroup/cpu.max")),
            "ram_gib": psutil.virtual_memory().total / 2**30,
            "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "python": platform.python_version()}


def describe_machine(m: dict) -> str:
    flags = ", ".join(f"{f} {'yes' if f in m['flags'] else 'no'}" for f in ML_FLAGS)
    cores = f"{m['logical']} logical CPUs ({m['usable']} usable, {m['physical']} physical cores"
    cores += f", cgroup quota {m['quota_cpus']:g} CPUs)" if m.get("quota_cpus") else ")"
    load = f", 1-min load {m['load_1min']:.1f} at start" if m.get("load_1min") is not None else ""
    return (f"CPU: {m['model']} ({m['arch']}); {cores}; {m['ram_gib']:.1f} GiB RAM{load}; "
            f"Python {m['python']}.\nML instruction sets: {flags}.")


# --------------------------------------------------------------------------- budgets (pure)

def in_r(seconds: float, r_s: float) -> float:
    """``seconds`` as a multiple of the reference workload's time ``r_s``."""
    if not r_s > 0:
        raise ValueError(f"r_s must be > 0 seconds, got {r_s}")
    return seconds / r_s


def over_budget(row: dict, r_s: float) -> list[str]:
    """Why one notebook's row is over its budget (empty: within it)."""
    reasons = []
    if row["status"] != "ok":
        reasons.append(row["status"])
    wall_r = in_r(row["wall_s"], r_s)
    if wall_r > BUDGET_NB_R:
        reasons.append(f"{wall_r:.1f} R > {BUDGET_NB_R:g} R")
    if row["peak_mib"] > BUDGET_MIB:
        reasons.append(f"{row['peak_mib']:.0f} MiB > {BUDGET_MIB:g} MiB")
    return reasons


def busy_warning(ref: dict, mach: dict) -> str | None:
    """A warning when R's own timings show other work on the cores (then every figure here is
    slower than this machine is), else None."""
    why = []
    if ref.get("cpu_s") and ref.get("runs_s") and ref.get("threads"):
        share = sum(ref["cpu_s"]) / sum(ref["runs_s"]) / ref["threads"]
        if share < 0.6:
            why.append(f"R got {share:.0%} of its {ref['threads']} threads' time")
    cores = mach.get("usable") or mach.get("logical")
    if mach.get("load_1min") is not None and cores and mach["load_1min"] > 0.5 * cores:
        why.append(f"1-min load {mach['load_1min']:.1f} on {cores} CPUs before it started")
    return ("**The machine was busy** (" + "; ".join(why) + "): R and the wall times are slower "
            "than this machine is; re-run it idle.") if why else None


def render_course(rows: list[dict], ref: dict, mach: dict, date: str) -> str:
    """bench/course.md: R, the machine, one row per notebook with its verdict, and the totals."""
    r_s = ref["r_s"]
    runs = ", ".join(f"{s:.2f}" for s in ref.get("runs_s", []))
    lines = [
        "# Course benchmark",
        "",
        f"{date}. {describe_machine(mach)}",
        "",
        f"**R = {r_s:.2f} s**: the reference workload, {R_STEPS} Adam steps of "
        f"`gl.models.cnn1d(channels={R_CHANNELS})`, batch {R_BATCH}, on MNIST-1D, on the CPU with "
        f"{ref.get('threads', '?')} threads (what `gl.setup` gives the lessons); median of "
        f"{len(ref.get('runs_s', [])) or '?'} runs ({runs} s) after a {R_WARMUP_STEPS}-step warm-up, "
        f"in a fresh process{'' if runs else ' (given with --r-s, not timed)'}"
        + (f"; torch {ref['torch']}, CPU kernels {ref['cpu_capability']}" if ref.get("torch") else "")
        + ". On the slower 2-core CI machine R took 6.0-7.1 s.",
        "",
        *([busy, ""] if (busy := busy_warning(ref, mach)) else []),
        "Each notebook ran in a fresh kernel (nbclient); wall time includes the kernel's start, peak "
        "memory is the kernel's peak RSS (its process tree). Budgets: each notebook "
        f"<= {BUDGET_NB_R:g} R and <= {BUDGET_MIB:g} MiB, the whole course <= {BUDGET_COURSE_R:g} R.",
        "",
        "| notebook | code cells | wall (s) | wall (R) | peak RSS (MiB) | within budget | status |",
        "|---|---:|---:|---:|---:|:---|---|",
    ]
    over = []
    for r in rows:
        reasons = over_budget(r, r_s)
        if reasons:
            over.append(f"{r['notebook']} ({'; '.join(reasons)})")
        lines.append(f"| {r['notebook']} | {r['cells']} | {r['wall_s']:.1f} | "
                     f"{in_r(r['wall_s'], r_s):.1f} | {r['peak_mib']:.0f} | "
                     f"{'**no**: ' + '; '.join(reasons) if reasons else 'yes'} | {r['status']} |")
    total_s = sum(r["wall_s"] for r in rows)
    total_r = in_r(total_s, r_s)
    worst = max((r["peak_mib"] for r in rows), default=0)
    course_ok = total_r <= BUDGET_COURSE_R
    lines += ["",
              f"Total: {len(rows)} notebook{'s' if len(rows) != 1 else ''}, {total_s:.1f} s = **{total_r:.1f} R** "
              f"({'within' if course_ok else '**over**'} the course budget of "
              f"{BUDGET_COURSE_R:g} R); highest peak RSS {worst:.0f} MiB.",
              f"Over budget: {', '.join(over) if over else 'none'}."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- probes (fresh processes)

def probe_reference(repeats: int = R_REPEATS) -> dict:
    """Time R in this process (run it in a fresh one): median of ``repeats`` after a warm-up."""
    import torch

    import greenlab as gl

    info = gl.setup(seed=0, quiet=True)  # the lessons' thread count, whatever it is
    data = gl.data.load("mnist1d")

    def once(steps: int) -> tuple[float, float]:
        torch.manual_seed(0)
        model = gl.models.cnn1d(channels=R_CHANNELS)
        t0, c0 = time.perf_counter(), time.process_time()
        gl.fit(model, data.x_train, data.y_train, steps=steps, batch_size=R_BATCH, seed=0,
               device="cpu", progress=False)
        return time.perf_counter() - t0, time.process_time() - c0

    once(R_WARMUP_STEPS)
    runs = [once(R_STEPS) for _ in range(repeats)]
    return {"r_s": statistics.median(w for w, _ in runs), "runs_s": [w for w, _ in runs],
            "cpu_s": [c for _, c in runs], "threads": info.threads,
            "torch": str(torch.__version__),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def run_probe(kind: str, timeout_s: float = 3600) -> dict | list:
    """Run ``--probe kind`` of this script in a fresh interpreter; its JSON result."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", kind],
                          capture_output=True, text=True, timeout=timeout_s, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench probe {kind!r} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- notebooks

def _tree_rss(pid: int) -> tuple[float, float]:
    """(RSS of the process tree in MiB, the kernel's own peak RSS (VmHWM) in MiB)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        hwm = 0.0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = float(line.split()[1]) / 1024
        return rss / 2**20, hwm
    except (psutil.Error, OSError):
        return 0.0, 0.0


def run_one(path: Path, timeout: int = 900) -> dict:
    """Execute one notebook in a fresh kernel: wall time, peak RSS, code cells, status."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    peak = {"rss": 0.0}
    done = threading.Event()

    def poll():
        while not done.is_set():
            km = getattr(client, "km", None)
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is not None:
                rss, hwm = _tree_rss(proc.pid)
                peak["rss"] = max(peak["rss"], rss, hwm)
            done.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    status = "ok"
    try:
        client.execute()
    except Exception as exc:  # report, don't stop the benchmark
        status = f"error: {type(exc).__name__}"
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    return {"notebook": _rel(path), "wall_s": wall, "peak_mib": peak["rss"], "cells": cells,
            "status": status}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _write(path: Path, text: str) -> None:
    from greenlab._internal.atomic import replacing

    with replacing(path) as tmp:
        tmp.write_text(text)
    print(f"wrote {_rel(path)}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "course.md")
    ap.add_argument("--meters-out", type=Path, default=ROOT / "bench" / "meters.md")
    ap.add_argument("--no-meters", action="store_true", help="skip the meter table")
    ap.add_argument("--meters-only", action="store_true", help="only the meter table")
    ap.add_argument("--r-s", type=float, help="R in seconds, measured before (skips timing it)")
    ap.add_argument("--probe", choices=("reference", "meters"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:  # the last stdout line is the result
        print(json.dumps(probe_reference() if args.probe == "reference"
                         else bench_meters.probe_meters()))
        return 0
    if args.r_s is not None and not args.r_s > 0:
        ap.error(f"--r-s must be > 0 seconds, got {args.r_s}")
    if args.meters_only and (args.no_meters or args.notebooks or args.r_s is not None):
        ap.error("--meters-only takes no notebooks, --r-s or --no-meters")
    paths = [p.resolve() for p in args.notebooks] or sorted(
        p for f in ("notebooks", "solutions") for p in (ROOT / f).glob("*.ipynb"))
    os.environ.setdefault("GREENLAB_LEDGER", str(Path(tempfile.mkdtemp()) / "bench.sqlite"))
    mach, date = machine(), dt.date.today().isoformat()
    print(describe_machine(mach))
    if not args.meters_only:
        if args.r_s is not None:
            ref = {"r_s": args.r_s}
        else:
            print("bench: timing R (reference workload) ...", end=" ", flush=True)
            ref = run_probe("reference")
            print(f"R = {ref['r_s']:.2f} s (runs "
                  f"{', '.join(f'{s:.2f}' for s in ref['runs_s'])} s, {ref['threads']} threads)")
        rows = []
        for p in paths:
            print(f"bench: {_rel(p)} ...", end=" ", flush=True)
            rows.append(r := run_one(p))
            print(f"{r['wall_s']:.1f} s = {in_r(r['wall_s'], ref['r_s']):.1f} R, "
                  f"{r['peak_mib']:.0f} MiB, {r['status']}")
        _write(args.out, render_course(rows, ref, mach, date))
    if not args.no_meters:
        print("bench: meters (fresh process, no torch) ...", flush=True)
        meters = run_probe("meters")
        for m in meters:
            print("  " + ", ".join(f"{k}={v}" for k, v in m.items()))
        _write(args.meters_out, bench_meters.render(meters, f"{date}. {describe_machine(mach)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
