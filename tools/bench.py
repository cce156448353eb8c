"""Benchmark the course: execute every notebook in a fresh kernel, record wall time and peak RSS.

    python tools/bench.py [NB ...] [--out bench/course.md]

Writes a Markdown table (per notebook and totals) against the course's budget: each notebook
<= 90 s and <= 1.5 GB on 2 CPU cores. A benchmark, not a test: it reports, it does not fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from greenlab._internal.atomic import replacing

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S, BUDGET_MIB = 90.0, 1536.0


def _tree_rss(pid: int) -> tuple[float, float]:
    """(RSS of the process tree in MiB, the kernel's own peak RSS (VmHWM) in MiB)."""
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
    return {"notebook": str(path.relative_to(ROOT)), "wall_s": wall, "peak_mib": peak["rss"],
            "cells": cells, "status": status}


def table(rows: list[dict]) -> str:
    lines = [
        "# Course benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical cores, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python {platform.python_version()}; "
        f"{dt.date.today().isoformat()}. Each notebook executed in a fresh kernel (nbclient), "
        "wall time includes kernel start; peak memory is the kernel's peak RSS.",
        f"Budget per notebook: <= {BUDGET_S:.0f} s and <= {BUDGET_MIB:.0f} MiB (1.5 GiB).",
        "",
        "| notebook | code cells | wall (s) | peak RSS (MiB) | within budget | status |",
        "|---|---:|---:|---:|:---:|---|",
    ]
    for r in rows:
        ok = r["wall_s"] <= BUDGET_S and r["peak_mib"] <= BUDGET_MIB and r["status"] == "ok"
        lines.append(f"| {r['notebook']} | {r['cells']} | {r['wall_s']:.1f} | {r['peak_mib']:.0f} | "
                     f"{'yes' if ok else '**no**'} | {r['status']} |")
    total = sum(r["wall_s"] for r in rows)
    worst = max((r["peak_mib"] for r in rows), default=0)
    lines += ["", f"Total: {len(rows)} notebooks, {total:.1f} s; highest peak RSS {worst:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "course.md")
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(
        p for f in ("notebooks", "solutions") for p in (ROOT / f).glob("*.ipynb"))
    os.environ.setdefault("GREENLAB_LEDGER", str(Path(tempfile.mkdtemp()) / "bench.sqlite"))
    rows = []
    for p in paths:
        print(f"bench: {p.relative_to(ROOT)} ...", end=" ", flush=True)
        rows.append(run_one(p))
        print(f"{rows[-1]['wall_s']:.1f} s, {rows[-1]['peak_mib']:.0f} MiB, {rows[-1]['status']}")
    with replacing(args.out) as tmp:
        tmp.write_text(table(rows))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
