"""tools/bench.py's (and bench_meters.py's) pure parts: /proc/cpuinfo flags, R-multiples, budget verdicts, the tables.
No notebook runs here (the benchmark itself is `make bench`)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench", ROOT / "tools" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
meters = bench.bench_meters

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
bogomips\t: 4000.00

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: sse2 avx avx2 fma\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32\nCPU part\t: 0xd0c\n"

MACHINE = {"model": "AMD EPYC 7B12", "flags": ["avx2", "fma"], "arch": "x86_64", "logical": 2,
           "usable": 2, "physical": 1, "quota_cpus": None, "ram_gib": 7.8, "load_1min": 0.1,
           "python": "3.11.7"}
REF = {"r_s": 6.0, "runs_s": [5.9, 6.0, 6.4], "cpu_s": [11.6, 11.9, 12.5], "threads": 2,
       "torch": "2.13.0+cpu", "cpu_capability": "AVX2"}


def row(name, wall_s, peak_mib=500.0, status="ok", cells=10):
    return {"notebook": name, "wall_s": wall_s, "peak_mib": peak_mib, "cells": cells,
            "status": status}


def test_cpuinfo_flags_model_and_count():
    xeon = bench.parse_cpuinfo(XEON)
    assert xeon["model"] == "Intel(R) Xeon(R) Platinum 8480+" and xeon["logical_cpus"] == 2
    assert xeon["flags"] == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
                             "amx_bf16", "amx_int8"]  # in ML_FLAGS order; avx512bw is not listed
    epyc = bench.parse_cpuinfo(EPYC)
    assert epyc == {"model": "AMD EPYC 7B12", "flags": ["avx2", "fma"], "logical_cpus": 1}
    arm = bench.parse_cpuinfo(ARM)
    assert arm == {"model": "unknown", "flags": [], "logical_cpus": 1}
    assert bench.parse_cpuinfo("") == {"model": "unknown", "flags": [], "logical_cpus": 0}


def test_this_machine_is_described():
    m = bench.machine()
    assert m["logical"] >= 1 and m["model"] and set(m["flags"]) <= set(bench.ML_FLAGS)
    text = bench.describe_machine(MACHINE)
    assert "AMD EPYC 7B12 (x86_64)" in text and "2 logical CPUs (2 usable, 1 physical cores)" in text
    assert "avx2 yes" in text and "avx512f no" in text and "amx_int8 no" in text
    assert "cgroup quota 1.5 CPUs" in bench.describe_machine({**MACHINE, "quota_cpus": 1.5})


@pytest.mark.parametrize("text, cpus", [("200000 100000\n", 2.0), ("150000 100000", 1.5),
                                        ("max 100000\n", None), ("", None), ("a b", None),
                                        ("100 0", None)])
def test_cgroup_cpu_quota(text, cpus):
    assert bench.parse_cgroup_cpu_max(text) == cpus


def test_r_multiples():
    assert bench.in_r(90.0, 6.0) == 15.0
    assert bench.in_r(3.0, 6.0) == 0.5
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="r_s must be > 0 seconds"):
            bench.in_r(1.0, bad)


def test_budget_verdicts():
    assert bench.over_budget(row("a", 90.0), 6.0) == []  # exactly 15 R is within
    assert bench.over_budget(row("a", 90.1), 6.0) == ["15.0 R > 15 R"]
    assert bench.over_budget(row("a", 204.0), 6.0) == ["34.0 R > 15 R"]
    assert bench.over_budget(row("a", 10.0, peak_mib=1536.0), 6.0) == []
    assert bench.over_budget(row("a", 10.0, peak_mib=1600.0), 6.0) == ["1600 MiB > 1536 MiB"]
    assert bench.over_budget(row("a", 300.0, 2000.0, "error: CellExecutionError"), 6.0) == [
        "error: CellExecutionError", "50.0 R > 15 R", "2000 MiB > 1536 MiB"]
    # the same notebook on a machine 4x slower: the same multiple of that machine's R
    assert bench.over_budget(row("a", 4 * 80.0), 4 * 6.0) == bench.over_budget(row("a", 80.0), 6.0)


def test_course_table():
    rows = [row("notebooks/00_measuring_energy.ipynb", 20.4, 529, cells=20),
            row("notebooks/02_pruning.ipynb", 204.0, 1153, cells=27),
            row("notebooks/03_quantization.ipynb", 50.0, 1600, cells=24)]
    md = bench.render_course(rows, REF, MACHINE, "2026-01-02")
    assert "**R = 6.00 s**" in md and "(5.90, 6.00, 6.40 s)" in md and "with 2 threads" in md
    assert "AMD EPYC 7B12" in md and "avx2 yes" in md and "CPU kernels AVX2" in md
    assert "| notebooks/00_measuring_energy.ipynb | 20 | 20.4 | 3.4 | 529 | yes | ok |" in md
    assert "| notebooks/02_pruning.ipynb | 27 | 204.0 | 34.0 | 1153 | **no**: 34.0 R > 15 R | ok |" in md
    assert "| 8.3 | 1600 | **no**: 1600 MiB > 1536 MiB |" in md
    assert "Total: 3 notebooks, 274.4 s = **45.7 R** (within the course budget of 150 R)" in md
    assert ("Over budget: notebooks/02_pruning.ipynb (34.0 R > 15 R), "
            "notebooks/03_quantization.ipynb (1600 MiB > 1536 MiB).") in md
    assert "busy" not in md
    slow = bench.render_course([row("x.ipynb", 1000.0)], {"r_s": 6.0}, MACHINE, "2026-01-02")
    assert "Total: 1 notebook, 1000.0 s = **166.7 R** (**over** the course budget of 150 R)" in slow
    assert "given with --r-s, not timed" in slow
    none = bench.render_course(rows[:1], REF, MACHINE, "2026-01-02")
    assert "Over budget: none." in none


def test_a_busy_machine_is_said_to_be():
    assert bench.busy_warning(REF, MACHINE) is None
    starved = {**REF, "runs_s": [117.0, 159.0, 162.0], "cpu_s": [66.0, 77.0, 77.0]}
    warning = bench.busy_warning(starved, MACHINE)
    assert warning.startswith("**The machine was busy**") and "R got 25% of its 2 threads" in warning
    loaded = bench.busy_warning(REF, {**MACHINE, "load_1min": 3.9})
    assert "1-min load 3.9 on 2 CPUs" in loaded
    assert "The machine was busy" in bench.render_course([row("x", 1.0)], starved, MACHINE, "d")


def test_meter_table_and_targets():
    green = {"meter": "greenlab 0.1.0", "import_ms": 20.0, "first_start_ms": 86.0,
             "start_stop_ms": 0.03, "repeats": 50, "block_s": 0.265, "energy_j": 1.32,
             "source": "estimate", "kind": "estimated", "torch_after": False}
    cc = {**green, "meter": "codecarbon 3.3.2", "first_start_ms": 3258.0, "start_stop_ms": 20.5,
          "repeats": 10, "energy_j": 13.2, "source": "codecarbon: CPU mode cpu_load"}
    md = meters.render([green, cc], "2026-01-02. the machine")
    assert ("| greenlab 0.1.0 | 20.0 | 86.0 | 0.030 (n=50) | 0.265 | 1.32 | estimate | estimated | "
            "no | first start yes, start+stop yes |") in md
    assert "| codecarbon 3.3.2 | 20.0 | 3258 | 20.5 (n=10) |" in md and md.count("| - |") == 1
    assert md.startswith("# Meter overhead\n\n2026-01-02. the machine\n")
    slow = meters.render([{**green, "first_start_ms": 5800.0, "torch_after": True}], "d")
    assert "| yes | first start **no**, start+stop yes |" in slow
    assert "PYTHONDONTWRITEBYTECODE" not in md
    assert "PYTHONDONTWRITEBYTECODE" in meters.render([{**green, "no_bytecode": True}], "d")
    assert "start+stop **no**" in meters.render([{**green, "start_stop_ms": 1.5}], "d")
    missing = meters.render([{"meter": "codecarbon", "error": "not installed (x)"}], "d")
    assert "| codecarbon | | | | | | | | | not installed (x) |" in missing


def test_r_given_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--r-s", "0", "--no-meters"])
    assert exc.value.code == 2 and "--r-s must be > 0 seconds" in capsys.readouterr().err


def test_meters_only_takes_nothing_else(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--meters-only", "notebooks/00_measuring_energy.ipynb"])
    assert exc.value.code == 2 and "--meters-only takes no notebooks" in capsys.readouterr().err
