import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from greenlab import ledger
from greenlab.meters import ReplayMeter


def row(**kw):
    base = dict(lesson="01", technique="baseline", model="mlp", dataset="mnist1d", accuracy=0.66)
    base.update(kw)
    return base


def test_log_and_read_roundtrip(tmp_path):
    path = tmp_path / "l.sqlite"
    stored = ledger.log(row(f1=0.65, latency_ms=0.2, size_bytes=1234, params=14_000), path=path)
    assert stored["machine"] == ledger.machine()
    df = ledger.read(path)
    assert len(df) == 1
    assert df.loc[0, "accuracy"] == pytest.approx(0.66)
    assert list(df.columns) == list(ledger.COLUMNS)


def test_measurement_fills_energy_and_its_provenance(tmp_path):
    meter = ReplayMeter([(1.0, 2.0)])
    with meter.measure("train") as m:
        pass
    stored = ledger.log(row(energy_phase="train", energy_samples=512), path=tmp_path / "l.sqlite",
                        measurement=m)
    assert stored["energy_j"] == pytest.approx(m.energy_j)
    assert stored["energy_kind"] == "estimated" and stored["energy_source"] == "estimate"
    assert stored["energy_phase"] == "train" and stored["energy_samples"] == 512


def test_energy_without_its_phase_is_refused(tmp_path):
    meter = ReplayMeter([(1.0, 2.0)])
    with meter.measure("infer") as m:
        pass
    with pytest.raises(ValueError, match=r"energy_phase'\] must say what energy_j paid for"):
        ledger.log(row(), path=tmp_path / "l.sqlite", measurement=m)
    assert not (tmp_path / "l.sqlite").exists() or ledger.read(tmp_path / "l.sqlite").empty


def test_train_and_inference_rows_of_one_model_both_stay(tmp_path):
    path = tmp_path / "l.sqlite"
    est = dict(energy_kind="estimated", energy_source="estimate")
    ledger.log(row(energy_j=50.0, energy_phase="train", **est), path=path)
    ledger.log(row(energy_j=0.4, energy_phase="inference", energy_samples=20_000, **est), path=path)
    ledger.log(row(energy_j=0.5, energy_phase="inference", energy_samples=20_000, **est), path=path)
    assert len(ledger.read(path)) == 2  # re-run inference replaced, training kept
    inference = ledger.read(path, phase="inference")
    assert list(inference["energy_j"]) == [0.5] and list(inference["energy_samples"]) == [20_000]
    assert list(ledger.read(path, phase="train")["energy_j"]) == [50.0]


def test_numpy_scalars_are_accepted(tmp_path):
    stored = ledger.log(row(accuracy=np.float32(0.5), params=np.int64(10)), path=tmp_path / "l.sqlite")
    assert stored["accuracy"] == pytest.approx(0.5) and stored["params"] == 10


def test_latest_keeps_newest_per_key(tmp_path):
    path = tmp_path / "l.sqlite"
    ledger.log(row(accuracy=0.5), path=path)
    ledger.log(row(accuracy=0.6), path=path)
    ledger.log(row(model="cnn", accuracy=0.9), path=path)
    assert len(ledger.read(path, latest=False)) == 3
    latest = ledger.read(path)
    assert sorted(latest["accuracy"]) == [0.6, 0.9]


def test_read_missing_file_is_empty(tmp_path):
    assert ledger.read(tmp_path / "none.sqlite").empty


def test_default_path_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLAB_LEDGER", str(tmp_path / "x.sqlite"))
    ledger.log(row())
    assert (tmp_path / "x.sqlite").exists() and len(ledger.read()) == 1


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (row(lesson=""), ValueError, r"row\['lesson'\] must be a non-empty string"),
        (row(colour="green"), ValueError, "unknown columns"),
        (row(accuracy=91.0), ValueError, r"row\['accuracy'\] must be a fraction"),
        (row(energy_j=-1.0), ValueError, r"row\['energy_j'\] must be a finite number >= 0"),
        (row(latency_ms=math.nan), ValueError, "finite"),
        (row(params="many"), TypeError, r"row\['params'\] must be a number"),
        (row(energy_j=1.0, energy_phase="training"), ValueError,
         r"row\['energy_phase'\] must be one of \('train', 'inference'\), got 'training'"),
        (row(energy_samples=100), ValueError, "energy_samples'\\] given without energy_j"),
        (row(energy_j=1.0, energy_phase="inference", energy_samples=-5), ValueError,
         r"row\['energy_samples'\] must be a finite number >= 0"),
    ],
)
def test_bad_rows_are_rejected_with_clear_errors(tmp_path, bad, error, match):
    with pytest.raises(error, match=match):
        ledger.log(bad, path=tmp_path / "l.sqlite")
    assert not (tmp_path / "l.sqlite").exists() or ledger.read(tmp_path / "l.sqlite").empty


def test_row_must_be_mapping(tmp_path):
    with pytest.raises(TypeError, match="row must be a mapping"):
        ledger.log([("lesson", "01")], path=tmp_path / "l.sqlite")


def test_export_csv_is_atomic_and_complete(tmp_path):
    path = tmp_path / "l.sqlite"
    for i in range(3):
        ledger.log(row(model=f"m{i}"), path=path)
    out = ledger.export_csv(tmp_path / "out" / "results.csv", path=path)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("lesson,technique,model") and len(lines) == 4
    assert not list(out.parent.glob(".*tmp"))


WRITER = textwrap.dedent("""
    import sys
    from greenlab import ledger
    path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        ledger.log(lesson="01", technique="t", model=f"{name}-{i}", accuracy=0.5, path=path)
""")


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    path = tmp_path / "l.sqlite"
    script = tmp_path / "w.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(path), name, "40"])
             for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    df = ledger.read(path, latest=False)
    assert len(df) == 80 and df["model"].nunique() == 80


CREATOR = textwrap.dedent("""
    import sys, time
    from greenlab import ledger
    path, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))  # every process opens the new file at once
    ledger.log(lesson="01", technique="t", model=sys.argv[3], accuracy=0.5, path=path)
""")


def test_kernels_creating_the_ledger_at_once_all_land(tmp_path):
    # SQLite's busy timeout does not cover the switch to WAL: without a retry, one of several
    # kernels opening a brand-new ledger at the same moment failed with "database is locked"
    script = tmp_path / "c.py"
    script.write_text(CREATOR)
    for attempt in range(5):
        path = tmp_path / f"l{attempt}.sqlite"
        start = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, str(script), str(path), str(start), f"m{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(6)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        assert len(ledger.read(path, latest=False)) == 6


def test_kill_mid_write_leaves_a_readable_file(tmp_path):
    path = tmp_path / "l.sqlite"
    script = tmp_path / "w.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path), "k", "100000"])
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until it is writing
        if path.exists():
            try:
                if len(ledger.read(path, latest=False)) > 20:
                    break
            except Exception:
                pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    df = ledger.read(path, latest=False)
    assert len(df) > 20
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ledger.log(row(model="after-crash"), path=path)  # still writable
    assert "after-crash" in set(ledger.read(path)["model"])


def test_summarize_rows_log_as_they_are(tmp_path):
    import greenlab as gl

    d = gl.data.load("digits")
    model = gl.models.mlp(64, (8,), 10)
    stored = ledger.log(lesson="t", technique="t", model="mlp", path=tmp_path / "l.sqlite",
                        **gl.summarize(model, d.x_test, d.y_test, repeats=2))
    assert stored["nonzero"] == stored["params"] and stored["batch_size"] == 256


def test_old_ledger_gains_new_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, lesson TEXT NOT NULL,"
                    " technique TEXT NOT NULL, model TEXT NOT NULL, accuracy REAL)")
        con.execute("INSERT INTO results (lesson, technique, model, accuracy) VALUES ('00','t','m',0.5)")
    ledger.log(row(nonzero=3), path=path)
    df = ledger.read(path, latest=False)
    assert len(df) == 2 and df["nonzero"].iloc[-1] == 3


def test_read_refuses_an_unknown_phase(tmp_path):
    with pytest.raises(ValueError, match="phase must be one of"):
        ledger.read(tmp_path / "l.sqlite", phase="eval")


# --- issue 15, section 2: a ledger that never loses or fakes a number ---------------------------

OLD_LEDGER = ("CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, lesson TEXT NOT NULL, "
              "technique TEXT NOT NULL, model TEXT NOT NULL, accuracy REAL, energy_j REAL)")


def _old_ledger(path):
    """A ledger as an older greenlab left it: fewer columns, rollback journal, one row."""
    with closing_connection(path) as con:
        con.execute(OLD_LEDGER)
        con.execute("INSERT INTO results (lesson, technique, model, accuracy, energy_j) "
                    "VALUES ('00', 't', 'old', 0.5, 3.0)")
    return path


class closing_connection:
    def __init__(self, path):
        self.con = sqlite3.connect(path)

    def __enter__(self):
        return self.con

    def __exit__(self, *exc):
        self.con.commit()
        self.con.close()


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


MIGRATOR = textwrap.dedent("""
    import sys, time
    from greenlab import ledger
    path, start, name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    time.sleep(max(0.0, start - time.time()))  # every kernel's first log() at once
    for i in range(5):
        ledger.log(lesson="01", technique="t", model=f"{name}-{i}", accuracy=0.5, path=path)
""")


@pytest.mark.slow  # 3 trials of 2 and 6 processes: ~10 s each on 2 cores
@pytest.mark.parametrize("writers", [2, 6])
def test_kernels_migrating_an_older_ledger_at_once_lose_no_row(tmp_path, writers):
    # before: "duplicate column name: latency_p90_ms" in 3 of 3 trials with 2 writers, the row lost
    script = tmp_path / "m.py"
    script.write_text(MIGRATOR)
    for trial in range(3):
        path = _old_ledger(tmp_path / f"old{trial}.sqlite")
        start = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, str(script), str(path), str(start), f"w{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(writers)]
        errors = [p.communicate(timeout=180)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * writers, errors
        df = ledger.read(path, latest=False)
        assert len(df) == 1 + 5 * writers and df["model"].nunique() == 1 + 5 * writers


def test_read_never_changes_the_file(tmp_path):
    path = _old_ledger(tmp_path / "old.sqlite")
    before, files = _digest(path), sorted(p.name for p in tmp_path.iterdir())
    df = ledger.read(path)
    assert list(df.columns) == list(ledger.COLUMNS)  # the missing columns, empty
    assert df.loc[0, "model"] == "old" and df["latency_p90_ms"].isna().all()
    assert _digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == files
    with closing_connection(path) as con:  # no journal switch, no ALTER TABLE
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert len(con.execute("PRAGMA table_info(results)").fetchall()) == 6


def test_another_programs_database_is_left_untouched(tmp_path):
    path = tmp_path / "app.sqlite"
    with closing_connection(path) as con:
        con.execute("CREATE TABLE results (run INTEGER, score REAL)")
        con.execute("INSERT INTO results VALUES (1, 0.5)")
    before = _digest(path)
    with pytest.raises(ledger.LedgerError, match=r"app.sqlite is not a greenlab ledger: its table "
                                                 r"'results' has no column\(s\) \['lesson'"):
        ledger.read(path)
    with pytest.raises(ledger.LedgerError, match="is not a greenlab ledger"):
        ledger.log(row(), path=path)
    assert _digest(path) == before  # before: 20 columns added, then a failure
    assert "table 'results' has no column 'lesson'" in ledger.check(path)


def test_read_works_in_a_read_only_folder(tmp_path):
    from greenlab.course import sandbox

    if sandbox.reason():
        pytest.skip(f"needs a read-only mount (bubblewrap): {sandbox.reason()}")
    folder = tmp_path / "ro"
    ledger.log(row(model="a"), path=folder / "l.sqlite")  # a WAL ledger
    ledger.log(row(model="b"), path=folder / "l.sqlite")
    package = Path(ledger.__file__).resolve().parent
    code = ("import json, sys; from greenlab import ledger; "
            f"df = ledger.read({str(folder / 'l.sqlite')!r}); print(json.dumps(sorted(df['model'])))")
    argv = sandbox.wrap([sys.executable, "-c", code], read_only=[package, folder], cache=None,
                        limits=sandbox.Limits())  # the folder is bound read-only
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["a", "b"]


def _damage(path, rows=300):
    ledger.log(row(model="m0", notes="x" * 200), path=path)
    with closing_connection(path) as con:  # the other rows in one transaction (log() is one each)
        con.executemany("INSERT INTO results (lesson, technique, model, notes) VALUES (?, ?, ?, ?)",
                        [("01", "baseline", f"m{i}", "x" * 200) for i in range(1, rows)])
    with open(path, "r+b") as f:  # a page in the middle of the table overwritten
        f.seek(7 * 4096)
        f.write(b"\xff" * 4096)


def test_a_damaged_ledger_is_named_with_the_way_out(tmp_path):
    path = tmp_path / "l.sqlite"
    _damage(path)
    with pytest.raises(ledger.LedgerError, match=r"l.sqlite is damaged \(database disk image is "
                                                 r"malformed\).*ledger.recover\("):
        ledger.read(path)
    with pytest.raises(ledger.LedgerError, match="is damaged"):  # before: it kept appending
        ledger.log(row(model="after"), path=path)
    assert ledger.check(path) != []
    copied = ledger.recover(path, tmp_path / "recovered.sqlite")
    df = ledger.read(tmp_path / "recovered.sqlite", latest=False)
    assert 0 < copied < 300 and len(df) == copied and ledger.check(tmp_path / "recovered.sqlite") == []
    assert list(df["model"]) == sorted(df["model"], key=lambda m: int(m[1:]))  # order kept
    with pytest.raises(ValueError, match="dest must be a new file"):
        ledger.recover(path, tmp_path / "recovered.sqlite")


def test_a_whole_ledger_checks_clean_and_recovers_whole(tmp_path):
    path = tmp_path / "l.sqlite"
    for i in range(3):
        ledger.log(row(model=f"m{i}"), path=path)
    assert ledger.check(path) == []
    assert ledger.recover(path, tmp_path / "copy.sqlite") == 3
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    assert ledger.check(tmp_path / "junk.sqlite")[0].startswith("not readable as SQLite")
    with pytest.raises(ledger.LedgerError, match="junk.sqlite is damaged"):
        ledger.read(tmp_path / "junk.sqlite")


@pytest.mark.parametrize("energy, match", [
    (dict(), r"energy_kind'\] must be one of \('measured', 'estimated', 'mixed'\)"),
    (dict(energy_kind="measured"), r"energy_source'\] must name where energy_j came from"),
    (dict(energy_kind="measured", energy_source="estimate"), "contradicts"),
    (dict(energy_kind="measured", energy_source="rapl+estimate"), "contradicts"),
    (dict(energy_kind="estimated", energy_source="rapl"), "contradicts"),
    (dict(energy_kind="mixed", energy_source="rapl"), "contradicts"),
    (dict(energy_kind="mixed", energy_source="estimate"), "contradicts"),
    (dict(energy_kind="unavailable", energy_source="none"), "must be one of"),
])
def test_an_energy_says_truthfully_how_it_was_obtained(tmp_path, energy, match):
    # before: log(energy_j=1, energy_phase="train") and kind "measured" from "estimate" were stored
    with pytest.raises(ValueError, match=match):
        ledger.log(row(energy_j=1.0, energy_phase="train", **energy), path=tmp_path / "l.sqlite")


@pytest.mark.parametrize("kind, source", [
    ("measured", "rapl"), ("measured", "rapl+nvml"), ("measured", "replay"),
    ("estimated", "estimate"), ("mixed", "estimate+nvml"), ("mixed", "rapl+estimate"),
    ("measured", "codecarbon"), ("estimated", "codecarbon"),
])
def test_consistent_provenance_is_stored(tmp_path, kind, source):
    stored = ledger.log(row(energy_j=1.0, energy_phase="train", energy_kind=kind, energy_source=source),
                        path=tmp_path / "l.sqlite")
    assert (stored["energy_kind"], stored["energy_source"]) == (kind, source)


def test_a_measurement_fills_provenance_alone(tmp_path):
    meter = ReplayMeter([(1.0, 2.0)])
    with meter.measure("train") as m:
        pass
    with pytest.raises(ValueError, match=r"give measurement= or \['energy_kind'\], not both"):
        ledger.log(row(energy_phase="train"), path=tmp_path / "l.sqlite", measurement=m,
                   energy_kind="measured")
    with pytest.raises(ValueError, match=r"energy_kind'\] given without energy_j"):
        ledger.log(row(energy_kind="measured"), path=tmp_path / "l.sqlite")
    empty = dict(energy_j=None, energy_kind=None, energy_source=None)  # e.g. a Summary's blanks
    stored = ledger.log(row(energy_phase="train", **empty), path=tmp_path / "l.sqlite", measurement=m)
    assert (stored["energy_kind"], stored["energy_source"]) == (m.kind, m.source)
