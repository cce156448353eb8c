"""The meter table of ``make bench``: greenlab's meter beside codecarbon on the same short block.

:func:`probe_meters` runs in a fresh process that has not imported torch (``tools/bench.py --probe
meters`` starts one); :func:`render` writes its rows as Markdown. Targets for greenlab's meter: the
first window opens in <= 100 ms, one more start+stop takes <= 1 ms (median).
"""

from __future__ import annotations

import statistics
import sys
import time

FIRST_START_MS, START_STOP_MS = 100.0, 1.0


def _block() -> float:
    """The short block both meters measure (~0.1-0.5 s of pure-Python CPU work): its seconds."""
    t0 = time.perf_counter()
    sum(i * i for i in range(2_000_000))
    return time.perf_counter() - t0


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(_ms(t0))
    return statistics.median(times)


def probe_meters(repeats_greenlab: int = 50, repeats_codecarbon: int = 10) -> list[dict]:
    """Both meters on :func:`_block`, greenlab first, in this process (run it in a fresh one)."""
    t0 = time.perf_counter()
    import greenlab as gl

    import_ms, t0 = _ms(t0), time.perf_counter()
    with gl.measure("bench: block") as m:
        first_ms = _ms(t0)
        block_s = _block()

    def empty_window():
        with gl.measure("bench: empty"):
            pass

    rows = [{"meter": f"greenlab {gl.__version__}", "import_ms": import_ms,
             "first_start_ms": first_ms, "block_s": block_s,
             "start_stop_ms": _median_ms(empty_window, repeats_greenlab),
             "repeats": repeats_greenlab, "energy_j": m.energy_j, "source": m.source,
             "kind": m.kind, "torch_after": "torch" in sys.modules,
             "no_bytecode": sys.dont_write_bytecode}]
    import warnings

    warnings.simplefilter("ignore")  # codecarbon's notices; the table says what matters
    t0 = time.perf_counter()
    try:
        import codecarbon
        from codecarbon import OfflineEmissionsTracker
    except ImportError as exc:
        return rows + [{"meter": "codecarbon", "error": f"not installed ({exc})"}]
    import_ms = _ms(t0)

    def started():
        tracker = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False,
                                          log_level="error")
        tracker.start()
        return tracker

    t0 = time.perf_counter()
    tracker = started()
    first_ms = _ms(t0)
    block_s = _block()
    tracker.stop()
    data = tracker.final_emissions_data
    mode = next((getattr(h, "_mode", "") for h in getattr(tracker, "_hardware", [])
                 if type(h).__name__ == "CPU"), "") or "unknown"
    measured = mode in ("intel_rapl", "apple_powermetrics", "intel_power_gadget")
    return rows + [{"meter": f"codecarbon {codecarbon.__version__}", "import_ms": import_ms,
                    "first_start_ms": first_ms, "block_s": block_s,
                    "start_stop_ms": _median_ms(lambda: started().stop(), repeats_codecarbon),
                    "repeats": repeats_codecarbon,
                    "energy_j": data.energy_consumed * 3.6e6 if data else None,
                    "source": f"codecarbon: CPU mode {mode}",
                    "kind": "measured" if measured else "estimated",
                    "torch_after": "torch" in sys.modules}]



def render(rows: list[dict], header: str) -> str:
    """bench/meters.md: the rows of :func:`probe_meters`, with greenlab's targets' verdicts;
    ``header`` says when and on which machine."""
    def ms(v):
        return "n/a" if v is None else f"{v:.{3 if v < 1 else 1 if v < 100 else 0}f}"

    lines = [
        "# Meter overhead",
        "",
        header,
        "",
        "One fresh process without torch measures the same short pure-Python block with "
        "`gl.measure`, then with `codecarbon.OfflineEmissionsTracker(save_to_file=False, "
        "log_level=\"error\")`. *first start*: from asking for the first window to the block's "
        "first line (greenlab imports `greenlab.meters` and builds its default meter; codecarbon "
        "builds and starts a tracker); "
        "*start+stop*: median of one more empty window (codecarbon: a new tracker). Targets for "
        f"greenlab: first start <= {FIRST_START_MS:g} ms, start+stop "
        f"<= {START_STOP_MS:g} ms.",
        "",
        "| meter | import (ms) | first start (ms) | median start+stop (ms) | block (s) | "
        "energy (J) | stated source | kind | torch imported after | targets |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['meter']} | | | | | | | | | {r['error']} |")
            continue
        if r["meter"].startswith("greenlab"):
            first_ok = r["first_start_ms"] <= FIRST_START_MS
            stop_ok = r["start_stop_ms"] <= START_STOP_MS
            targets = (f"first start {'yes' if first_ok else '**no**'}, "
                       f"start+stop {'yes' if stop_ok else '**no**'}")
        else:
            targets = "-"
        energy = "n/a" if r["energy_j"] is None else f"{r['energy_j']:.3g}"
        lines.append(f"| {r['meter']} | {ms(r['import_ms'])} | {ms(r['first_start_ms'])} | "
                     f"{ms(r['start_stop_ms'])} (n={r['repeats']}) | {r['block_s']:.3f} | {energy} | "
                     f"{r['source']} | {r['kind']} | {'yes' if r['torch_after'] else 'no'} | "
                     f"{targets} |")
    if any(r.get("no_bytecode") for r in rows):
        lines += ["", "Python wrote no bytecode here (PYTHONDONTWRITEBYTECODE): every first import "
                  "included compiling its modules."]
    lines += ["", "codecarbon states no kind; *kind* here follows its CPU mode (RAPL / powermetrics "
              "/ Power Gadget: measured; cpu_load / constant: estimated)."]
    return "\n".join(lines) + "\n"
