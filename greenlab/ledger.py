"""The results ledger: every lesson logs what it measured; the capstone reads it all back.

Stored in one SQLite file (standard library, WAL journal, busy timeout): each ``log`` is one
transaction, so two kernels writing at once both land, and a kernel killed mid-write leaves the file
readable with every committed row. A ledger from an older greenlab gains the new columns under a
write lock (kernels migrating at once do not collide). ``read`` opens the file read-only and never
changes it. A damaged file is named, with the way out: ``check`` lists what is wrong, ``recover``
copies every readable row to a new ledger. ``export_csv`` writes a copy for people.

Location: ``GREENLAB_LEDGER`` or ``~/.greenlab/ledger.sqlite``.

Energy convention: a row with ``energy_j`` says what it paid for in ``energy_phase`` ("train": the
model's training; "inference": running it) and, where known, how many samples that covered in
``energy_samples`` (predictions made, or training samples seen = steps x batch), so rows from
different lessons compare per prediction, and training energy is never plotted against inference.
Every energy also says how far to trust it: ``energy_kind`` (measured | estimated | mixed) and
``energy_source``, taken from a :class:`greenlab.meters.Measurement` or given together and
consistent (an ``estimate`` source is never "measured").
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
from urllib.parse import quote

from ._internal.atomic import replacing

__all__ = ["COLUMNS", "PHASES", "KINDS", "LedgerError", "log", "read", "check", "recover",
           "export_csv", "default_path", "machine"]

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
KINDS = ("measured", "estimated", "mixed")
_ESTIMATING = {"estimate", "model"}  # energy_source families that are a model, not a counter
_EITHER = {"codecarbon"}  # measures or estimates, depending on the machine


class LedgerError(ValueError):
    """A ledger file that cannot be used as one (damaged, or another program's database)."""


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


def _damaged(path: Path, exc: Exception) -> LedgerError:
    return LedgerError(
        f"{path} is damaged ({exc}): greenlab.ledger.check({str(path)!r}) lists the problems and "
        f"greenlab.ledger.recover({str(path)!r}, 'recovered.sqlite') copies every readable row into "
        "a new ledger (then move it into place, or point GREENLAB_LEDGER at it)")


def _is_damage(exc: Exception) -> bool:
    """SQLite's way of saying the file is not (or no longer) a whole database."""
    text = str(exc).lower()
    return any(w in text for w in ("malformed", "not a database", "corrupt", "quick_check"))


def _columns(con: sqlite3.Connection) -> set[str]:
    return {r[1] for r in con.execute("PRAGMA table_info(results)")}


def _foreign(path: Path, have: set[str]) -> None:
    """Refuse a ``results`` table that is not a ledger's (another program's database)."""
    missing = [c for c in _REQUIRED if c not in have]
    if have and missing:
        raise LedgerError(f"{path} is not a greenlab ledger: its table 'results' has no column(s) "
                          f"{missing}; it is left untouched (use another path or GREENLAB_LEDGER)")


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    """Create the table, or add the columns an older greenlab did not have, under the write lock:
    two kernels doing it at once used to collide on "duplicate column name" and lose the row."""
    have = _columns(con)
    _foreign(path, have)
    if set(COLUMNS) <= have:
        return
    con.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for a kernel migrating right now
    try:
        cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
        have = _columns(con)  # what it is now that we hold the lock
        for name, kind in COLUMNS.items():
            if name not in have:
                con.execute(f"ALTER TABLE results ADD COLUMN {name} {kind.replace(' NOT NULL', '')}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _connect(path: Path) -> sqlite3.Connection:
    """A connection for writing: WAL, the current columns, and a quick check that the file is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        found = con.execute("PRAGMA quick_check(1)").fetchone()[0]
        if found != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {found}")
        _foreign(path, _columns(con))  # before anything is written to it
        _use_wal(con)
        con.execute("PRAGMA synchronous=NORMAL")
        _migrate(con, path)
    except sqlite3.DatabaseError as exc:
        con.close()
        if not _is_damage(exc):
            raise
        raise _damaged(path, exc) from exc
    except BaseException:
        con.close()
        raise
    return con


def _open_read_only(path: Path) -> sqlite3.Connection:
    """Read-only: no journal switch, no CREATE or ALTER, nothing written to the file. A WAL ledger
    in a folder we cannot write is opened as immutable (SQLite could not create its -shm file)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30.0, isolation_level=None)


def _provenance(kind, source) -> None:
    """An energy says how far to trust it, and kind and source agree (an estimate is never
    "measured"): the rule ``log`` applies when energy_j is given without a Measurement."""
    if kind not in KINDS:
        raise ValueError(f"row['energy_kind'] must be one of {KINDS} (how energy_j was obtained), "
                         f"got {kind!r}: pass measurement=m, or m.kind and m.source")
    if not isinstance(source, str) or not source:
        raise ValueError(f"row['energy_source'] must name where energy_j came from (e.g. 'rapl', "
                         f"'estimate'), got {source!r}: pass measurement=m, or m.kind and m.source")
    families = {f.split(":")[0] for f in source.split("+")}
    modelled, counted = families & (_ESTIMATING | _EITHER), families - _ESTIMATING - _EITHER
    consistent = {"measured": not families & _ESTIMATING,
                  "estimated": not counted,
                  "mixed": bool(modelled) and (bool(counted) or bool(families & _EITHER))}[kind]
    if not consistent:
        raise ValueError(f"row['energy_kind'] {kind!r} contradicts row['energy_source'] {source!r}: "
                         "an estimate is 'estimated', counters alone are 'measured', both 'mixed'")


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
    for key in ("energy_samples", "energy_kind", "energy_source"):
        if out.get(key) is not None and out.get("energy_j") is None:
            raise ValueError(f"row[{key!r}] given without energy_j")
    if out.get("energy_j") is not None:
        _provenance(out.get("energy_kind"), out.get("energy_source"))
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
        given = sorted(k for k in ("energy_j", "energy_kind", "energy_source") if data.get(k) is not None)
        if given:
            raise ValueError(f"give measurement= or {given}, not both (the measurement fills them)")
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
    """All rows as a pandas DataFrame (every column of ``COLUMNS``; those an older ledger lacks
    are empty); ``latest`` keeps the newest row per (lesson, technique, model, dataset,
    energy_phase, machine), so re-running a notebook does not double count; ``phase`` ("train" or
    "inference") keeps the rows whose energy paid for that. The file is opened read-only."""
    import pandas as pd

    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES} or None, got {phase!r}")
    p = Path(path) if path else default_path()
    if not p.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    try:
        with closing(_open_read_only(p)) as con:
            have = _columns(con)
            if not have:
                raise LedgerError(f"{p} is not a greenlab ledger: it has no table 'results'")
            _foreign(p, have)
            df = pd.read_sql_query("SELECT * FROM results ORDER BY id", con)
    except sqlite3.DatabaseError as exc:
        if not _is_damage(exc):
            raise
        raise _damaged(p, exc) from exc
    except pd.errors.DatabaseError as exc:  # pandas wraps SQLite's error while reading rows
        if not _is_damage(exc):
            raise
        raise _damaged(p, exc) from exc
    df = df.reindex(columns=["id", *COLUMNS, *(c for c in df.columns if c not in COLUMNS and c != "id")])
    if latest and len(df):
        keys = ["lesson", "technique", "model", "dataset", "energy_phase", "machine"]
        df = df.drop_duplicates(subset=keys, keep="last")
    if phase is not None:
        df = df[df["energy_phase"] == phase]
    return df.drop(columns=["id"]).reset_index(drop=True)


def check(path: str | Path | None = None) -> list[str]:
    """What is wrong with a ledger file (SQLite's integrity check, then its table): empty when
    it is whole. Read-only."""
    p = Path(path) if path else default_path()
    if not p.is_file():
        raise ValueError(f"path must be an existing ledger file, got {str(p)!r}")
    try:
        with closing(_open_read_only(p)) as con:
            problems = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
            have = _columns(con)
    except sqlite3.DatabaseError as exc:
        return [f"not readable as SQLite: {exc}"]
    if not have:
        problems.append("no table 'results'")
    problems += [f"table 'results' has no column {c!r}" for c in _REQUIRED if have and c not in have]
    return problems


def recover(path: str | Path, dest: str | Path) -> int:
    """Copy every row of the ledger ``path`` that can still be read into a new ledger ``dest``
    (which must not exist); returns how many rows were copied. Rows on damaged pages are skipped."""
    src, dest = Path(path), Path(dest)
    if not src.is_file():
        raise ValueError(f"path must be an existing ledger file, got {str(src)!r}")
    if dest.exists():
        raise ValueError(f"dest must be a new file (it is not overwritten), got {str(dest)!r}")
    try:
        with closing(_open_read_only(src)) as con:
            names = [c for c in (r[1] for r in con.execute("PRAGMA table_info(results)")) if c in COLUMNS]
            if not names:
                raise LedgerError(f"{src} has no readable ledger table 'results'")
            rows = _readable_rows(con, names)
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"nothing in {src} can be read as a ledger ({exc})") from exc
    with closing(_connect(dest)) as out:
        out.execute("BEGIN")
        out.executemany(f"INSERT INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        rows)
        out.execute("COMMIT")
    return len(rows)


def _readable_rows(con: sqlite3.Connection, names: list[str]) -> list[tuple]:
    """The rows of ``results`` in id order, stepping over ids whose pages cannot be read."""
    rows, last, step = [], -1, 0
    select = f"SELECT id, {', '.join(names)} FROM results WHERE id > ? ORDER BY id"
    while step < 1 << 24:
        try:
            for row in con.execute(select, (last + step,)):
                rows.append(row[1:])
                last, step = row[0], 0
            return rows
        except sqlite3.DatabaseError:
            step = max(1, step * 2)  # skip ahead past the damaged page
    return rows


def export_csv(dest: str | Path, path: str | Path | None = None, latest: bool = True) -> Path:
    """Write the ledger as CSV atomically (temp file + rename); returns ``dest``."""
    dest = Path(dest)
    with replacing(dest) as tmp:
        read(path, latest=latest).to_csv(tmp, index=False)
    return dest
