"""The results ledger: every lesson logs what it measured; the capstone reads it all back.

Stored in one SQLite file (standard library, WAL journal, busy timeout): each ``log`` is one
transaction, so two kernels writing at once both land, and a kernel killed mid-write leaves the file
readable with every committed row. ``export_csv`` writes a copy for people (temp file + rename).

Location: ``GREENLAB_LEDGER`` or ``~/.greenlab/ledger.sqlite``.

Energy convention: a row with ``energy_j`` says what it paid for in ``energy_phase`` ("train": the
model's training; "inference": running it) and, where known, how many samples that covered in
``energy_samples`` (predictions made, or training samples seen = steps x batch), so rows from
different lessons compare per prediction, and training energy is never plotted against inference.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from ._internal.atomic import replacing

__all__ = ["COLUMNS", "PHASES", "log", "read", "export_csv", "default_path", "machine"]

# column -> SQL type; the order is the order of CSV exports
COLUMNS: dict[str, str] = {
    "lesson": "TEXT NOT NULL",
    "technique": "TEXT NOT NULL",
    "model": "TEXT NOT NULL",
    "dataset": "TEXT",
    "accuracy": "REAL",
    "f1": "REAL",
    "latency_ms": "REAL",
    "latency_p90_ms": "REAL",
    "batch_size": "INTEGER",  # the batch latency_ms was timed on
    "latency_1_ms": "REAL",  # median latency of one sample (batch of 1)
    "size_bytes": "INTEGER",
    "params": "INTEGER",
    "nonzero": "INTEGER",  # weights that are not zero (pruning)
    "flops": "INTEGER",  # FLOPs of one forward pass on one sample (torch float models)
    "energy_j": "REAL",
    "energy_phase": "TEXT",  # train | inference: what energy_j paid for
    "energy_samples": "INTEGER",  # samples energy_j covered: predictions, or steps x batch
    "energy_kind": "TEXT",  # measured | estimated | mixed
    "energy_source": "TEXT",  # rapl | nvml | estimate | codecarbon ...
    "machine": "TEXT",
    "notes": "TEXT",
    "created_at": "REAL",  # unix seconds
}
_REQUIRED = ("lesson", "technique", "model")
_NUMERIC = ("accuracy", "f1", "latency_ms", "latency_p90_ms", "batch_size", "size_bytes", "params",
            "nonzero", "energy_j", "energy_samples", "latency_1_ms", "flops")
PHASES = ("train", "inference")


def default_path() -> Path:
    return Path(os.environ.get("GREENLAB_LEDGER", Path.home() / ".greenlab" / "ledger.sqlite"))


def machine() -> str:
    """A short label for this machine: host, CPU architecture and core count."""
    return f"{socket.gethostname()}/{platform.machine()}/{os.cpu_count()}c"


def _use_wal(con: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """Switch a ledger to WAL (kept in the file, so done once). SQLite does not apply its busy
    timeout to this switch: two kernels creating the ledger at once get "database is locked"
    at once, so retry until the other one is done."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    _use_wal(con)
    con.execute("PRAGMA synchronous=NORMAL")
    cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
    have = {r[1] for r in con.execute("PRAGMA table_info(results)")}
    for name, kind in COLUMNS.items():  # a ledger from an older greenlab gains the new columns
        if name not in have:
            con.execute(f"ALTER TABLE results ADD COLUMN {name} {kind.replace(' NOT NULL', '')}")
    return con


def _clean(row: Mapping) -> dict:
    if not isinstance(row, Mapping):
        raise TypeError(f"row must be a mapping of column -> value, got {type(row).__name__}")
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ValueError(f"row has unknown columns {unknown}; allowed: {list(COLUMNS)}")
    for key in _REQUIRED:
        if not isinstance(row.get(key), str) or not row.get(key):
            raise ValueError(f"row[{key!r}] must be a non-empty string, got {row.get(key)!r}")
    out = dict(row)
    for key in _NUMERIC:
        value = out.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
            raise TypeError(f"row[{key!r}] must be a number, got {type(value).__name__}")
        value = value.item() if hasattr(value, "item") else value
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"row[{key!r}] must be a finite number >= 0, got {value}")
        out[key] = value
    for key in ("accuracy", "f1"):
        if out.get(key) is not None and out[key] > 1:
            raise ValueError(f"row[{key!r}] must be a fraction in [0, 1], got {out[key]}")
    phase = out.get("energy_phase")
    if phase is not None and phase not in PHASES:
        raise ValueError(f"row['energy_phase'] must be one of {PHASES}, got {phase!r}")
    if out.get("energy_j") is not None and phase is None:
        raise ValueError("row['energy_phase'] must say what energy_j paid for: 'train' (the model's "
                         "training) or 'inference' (running it)")
    if out.get("energy_samples") is not None and out.get("energy_j") is None:
        raise ValueError("row['energy_samples'] given without energy_j")
    out.setdefault("machine", machine())
    out.setdefault("created_at", time.time())
    return out


def log(row: Mapping | None = None, path: str | Path | None = None, measurement=None,
        **columns) -> dict:
    """Append one result row; returns the row as stored.

    ``measurement`` (a :class:`greenlab.meters.Measurement`) fills ``energy_j``, ``energy_kind`` and
    ``energy_source``, so an estimate is never logged as a measurement; ``energy_phase`` must then
    say whether it was training or inference.

    >>> log(lesson="01", technique="baseline", model="mlp", accuracy=0.66,
    ...     measurement=m, energy_phase="train", energy_samples=2000 * 256)  # doctest: +SKIP
    """
    if row is not None and not isinstance(row, Mapping):
        raise TypeError(f"row must be a mapping of column -> value, got {type(row).__name__}")
    data = dict(row or {}, **columns)
    if measurement is not None:
        data.update(energy_j=measurement.energy_j, energy_kind=measurement.kind,
                    energy_source=measurement.source)
    data = _clean(data)
    keys = list(data)
    with closing(_connect(Path(path) if path else default_path())) as con:
        con.execute(
            f"INSERT INTO results ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
            [data[k] for k in keys],
        )
    return data


def read(path: str | Path | None = None, latest: bool = True, phase: str | None = None):
    """All rows as a pandas DataFrame; ``latest`` keeps the newest row per
    (lesson, technique, model, dataset, energy_phase, machine), so re-running a notebook does not
    double count; ``phase`` ("train" or "inference") keeps the rows whose energy paid for that."""
    import pandas as pd

    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES} or None, got {phase!r}")
    p = Path(path) if path else default_path()
    if not p.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    with closing(_connect(p)) as con:
        df = pd.read_sql_query("SELECT * FROM results ORDER BY id", con)
    if latest and len(df):
        keys = ["lesson", "technique", "model", "dataset", "energy_phase", "machine"]
        df = df.drop_duplicates(subset=keys, keep="last")
    if phase is not None:
        df = df[df["energy_phase"] == phase]
    return df.drop(columns=["id"]).reset_index(drop=True)


def export_csv(dest: str | Path, path: str | Path | None = None, latest: bool = True) -> Path:
    """Write the ledger as CSV atomically (temp file + rename); returns ``dest``."""
    dest = Path(dest)
    with replacing(dest) as tmp:
        read(path, latest=latest).to_csv(tmp, index=False)
    return dest
