"""Grading a hostile notebook: every attack of issue 15 (section 1) fails to change a score.

Each attack is a notebook built here from the generated stub of tests/fixtures/99_grading.ipynb
(2 tasks, 3 points; the unsolved stub scores 0). Before the fixes they scored: a master the
submission names by path 150/150, a monkeypatch of greenlab's checks 3/3, a poisoned autograder
cache 3/3 for the next untouched stub, a detached process rewrote the report to 6/6 after grading.
The gradings run concurrently (otter takes ~10 s each). The contained attacks need bubblewrap
(``make grade-deps``) and skip without it, with the reason.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from fakes import alive, gone

from greenlab.course import autograder, grade, sandbox

pytestmark = [pytest.mark.slow, pytest.mark.otter]
contained = pytest.mark.skipif(bool(sandbox.reason()), reason=f"no sandbox: {sandbox.reason()}")

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "tests" / "fixtures" / "99_grading.ipynb"


def _cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": textwrap.dedent(source)}


def _attack(stub: str, *sources: str, double: str | None = None) -> dict:
    """The stub with ``sources`` run right after its init cell (before any task is checked);
    ``double`` replaces the stub's answer cell of task 1."""
    nb = json.loads(stub)
    at = 1 + next(i for i, c in enumerate(nb["cells"]) if "gl.grade.notebook(" in "".join(c["source"]))
    nb["cells"][at:at] = [_cell(s) for s in sources]
    if double is not None:
        answer = next(c for c in nb["cells"] if "".join(c["source"]).startswith("def double("))
        answer["source"] = textwrap.dedent(double)
    return nb




def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder: solutions/ (the fixture master), exercises/ (its stub), build/autograder."""
    spec = importlib.util.spec_from_file_location("exercises_tool", ROOT / "tools" / "exercises.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tmp = tmp_path_factory.mktemp("attacks")
    solutions, exercises, build = tmp / "solutions", tmp / "exercises", tmp / "build" / "autograder"
    solutions.mkdir()
    exercises.mkdir()
    master = solutions / MASTER.name
    shutil.copyfile(MASTER, master)
    stub = tool.build(master, tmp / "work", build)
    (exercises / MASTER.name).write_text(stub, encoding="utf-8")
    (zip_path,) = build.glob("*.zip")
    return type("Course", (), dict(tmp=tmp, solutions=solutions, master=master, build=build,
                                   stub=stub, exercise=exercises / MASTER.name, zip=zip_path))


def _evil_master(folder: Path, name: str) -> None:
    """A master whose every test passes, worth 150 points, named ``name`` (a path)."""
    nb = json.loads(MASTER.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "raw" and src.startswith("# ASSIGNMENT CONFIG"):
            cell["source"] = f"{src}\nname: {name}"
        elif cell["cell_type"] == "raw" and "points:" in src:
            cell["source"] = src.replace("points: 2", "points: 75").replace("points: 1", "points: 75")
        elif cell["cell_type"] == "code" and "def test_" in src:
            cell["source"] = src.split("def test_")[0] + "def test_ok():\n    pass\n\ntest_ok()\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evilmaster.ipynb").write_text(json.dumps(nb), encoding="utf-8")


MONKEYPATCH = """
import greenlab as gl
import greenlab.course.checks
gl.checks.close = lambda *a, **k: None
greenlab.course.checks.close = lambda *a, **k: None
gl.checks.call = lambda label, fn, *a, **k: fn(*a, **k)
"""

POISON = """
import glob, io, zipfile
PASS = ("from otter.test_files import test_case\\nOK_FORMAT = False\\nname = {{q!r}}\\n"
        "points = {{p}}\\n@test_case(points=None, hidden=False)\\ndef t():\\n    pass\\n")
for z in glob.glob({build!r} + "/*.zip"):
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(z) as src, zipfile.ZipFile(buf, "w") as dst:
            for item in src.namelist():
                data = src.read(item)
                if item.startswith("tests/") and item.endswith(".py"):
                    data = PASS.format(q=item[6:-3], p=2).encode()
                dst.writestr(item, data)
        open(z, "wb").write(buf.getvalue())
    except OSError:
        pass
"""

CONTAINMENT = """
import os, socket, subprocess, sys
FOUND = []
def attempt(key, fn):
    try:
        fn()
        FOUND.append(key + "=DONE")
    except Exception:
        FOUND.append(key + "=no")
attempt("write_out", lambda: open({victim_dir!r} + "/planted.txt", "w").write("x"))
attempt("delete_out", lambda: os.remove({victim_dir!r} + "/victim.txt"))
attempt("write_beside", lambda: open({beside!r}, "w").write("x"))
attempt("read_master", lambda: open({master!r}).read())
attempt("read_secret", lambda: open({secret!r}).read())
attempt("net", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
attempt("write_package", lambda: open({planted!r}, "w").write("x"))
daemon = ("import os, time, json\\n"
          "while not os.path.exists({report!r}): time.sleep(0.2)\\n"
          "time.sleep(1)\\n"
          "open({report!r}, 'w').write(json.dumps({{'score': 6, 'max_score': 6}}))\\n")
subprocess.Popen([sys.executable, "-c", daemon, {marker!r}], start_new_session=True)
"""

LEAK = """
def double(x):
    raise RuntimeError("attempts: " + " ".join(FOUND))
"""


@pytest.fixture(scope="module")
def attacked(course):
    """Grade every attack notebook concurrently, then the untouched stub after the poisoning."""
    tmp = course.tmp
    jobs, extra = {}, {}
    _evil_master(tmp / "evil", str(tmp / "evil" / "evilmaster"))
    for key, name in {"abs": str(tmp / "evil" / "evilmaster"), "dotdot": "../evil/evilmaster"}.items():
        nb = json.loads(course.stub)
        nb["metadata"]["otter"]["assignment_name"] = name
        path = tmp / f"own_master_{key}" / MASTER.name
        path.parent.mkdir()
        path.write_text(json.dumps(nb), encoding="utf-8")
        jobs[f"own_master_{key}"] = (path, {"solutions": course.solutions, "build_dir": course.build})
    for key, sources in {"monkeypatch": [MONKEYPATCH],
                         "poison": [POISON.format(build=str(course.build))]}.items():
        path = tmp / key / MASTER.name
        path.parent.mkdir()
        path.write_text(json.dumps(_attack(course.stub, *sources)), encoding="utf-8")
        jobs[key] = (path, {"master": course.master, "build_dir": course.build})
    victims, secret = tmp / "victims", tmp / "secret.txt"
    victims.mkdir()
    (victims / "victim.txt").write_text("keep me")
    secret.write_text("the instructor's notes")
    server = socket.create_server(("127.0.0.1", 0))
    path = tmp / "containment" / MASTER.name
    path.parent.mkdir()
    marker = f"greenlab-attack-{secrets.token_hex(6)}"
    planted = Path(grade.__file__).resolve().parents[1] / f"planted-{secrets.token_hex(4)}.py"
    code = CONTAINMENT.format(victim_dir=str(victims), beside=str(path.with_name("beside.txt")),
                              master=str(course.master), secret=str(secret),
                              port=server.getsockname()[1], planted=str(planted),
                              report=str(path.with_name("99_grading.grade.json")), marker=marker)
    path.write_text(json.dumps(_attack(course.stub, code, double=LEAK)), encoding="utf-8")
    jobs["containment"] = (path, {"master": course.master, "build_dir": course.build})
    zip_before = _digest(course.zip)
    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {k: pool.submit(grade.grade, p, sandbox_mode="require", timeout_s=300, **kw)
                       for k, (p, kw) in jobs.items()}
            reports = {k: f.result() for k, f in futures.items()}
        extra["daemon_gone"] = gone(marker)
        extra["zip_after_attacks"] = _digest(course.zip)
        reports["stub_after_poison"] = grade.grade(course.exercise, master=course.master,
                                                   build_dir=course.build, sandbox_mode="require")
    finally:
        server.close()
        planted.unlink(missing_ok=True)  # only there if containment failed
    return type("Attacked", (), dict(reports=reports, paths={k: p for k, (p, _) in jobs.items()},
                                     victims=victims, zip_before=zip_before, planted=planted,
                                     **extra))


@contained
@pytest.mark.parametrize("key", ["own_master_abs", "own_master_dotdot"])
def test_a_master_the_submission_names_by_path_is_never_used(attacked, key):
    report = attacked.reports[key]  # before: 150 / 150 with the evil master
    assert (report.assignment, report.score, report.max_score) == ("99_grading", 0, 3), report.table()


def test_a_notebook_named_by_neither_file_nor_metadata_is_refused(course, tmp_path):
    nb = json.loads(course.stub)
    nb["metadata"]["otter"]["assignment_name"] = str(tmp_path / "evil" / "evilmaster")
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(ValueError, match="cannot tell which lesson 'submission.ipynb' is"):
        grade.grade(path, solutions=course.solutions)
    assert not (tmp_path / "submission.grade.json").exists()


def test_find_master_takes_only_lesson_names_from_the_graders_folder(course):
    assert autograder.find_master("99_grading", course.solutions) == course.master
    assert autograder.find_master("99", course.solutions) == course.master
    for bad in ("/etc/passwd", "../solutions/99_grading", "99_grading/../99_grading", "99_Grading",
                "99_grading.ipynb", ""):
        with pytest.raises(ValueError, match="must be a lesson name"):
            autograder.find_master(bad, course.solutions)
    with pytest.raises(TypeError, match="name must be a lesson name"):
        autograder.find_master(None, course.solutions)


@contained
def test_a_monkeypatch_of_greenlabs_checks_does_not_switch_the_tests_off(attacked):
    report = attacked.reports["monkeypatch"]  # before: 3 / 3
    assert report.status == "graded" and report.score == 0, report.table()
    assert "double(2) is None" in report.tasks[0].message


def test_the_checks_stay_on_even_without_a_sandbox(course, tmp_path):
    # the private greenlab of the tests does not depend on the sandbox: graded uncontained too
    path = tmp_path / MASTER.name
    path.write_text(json.dumps(_attack(course.stub, MONKEYPATCH)), encoding="utf-8")
    report = grade.grade(path, master=course.master, build_dir=course.build, sandbox_mode="off")
    assert report.status == "graded" and report.score == 0, report.table()
    assert report.sandbox == "none" and any("not contained" in n for n in report.notes)


@contained
def test_the_autograder_cache_cannot_be_poisoned_from_a_submission(attacked):
    assert attacked.reports["poison"].score == 0
    assert attacked.zip_after_attacks == attacked.zip_before  # the cache was not even reachable
    report = attacked.reports["stub_after_poison"]  # before: 3 / 3
    assert report.status == "graded" and report.score == 0, report.table()


def test_a_cached_zip_that_changed_is_rebuilt_not_trusted(course, tmp_path):
    build = tmp_path / "build"
    first = autograder.autograder(course.master, build, zip_path=course.zip)
    original = first.read_bytes()
    first.write_bytes(original[:-10] + b"0123456789")  # poisoned under its trusted name
    again = autograder.autograder(course.master, build, zip_path=None)
    assert again == first and again.read_bytes() != original[:-10] + b"0123456789"
    assert autograder.questions(again) == {"q1": 2.0, "q2": 1.0}


@contained
def test_a_submission_is_contained(attacked):
    report = attacked.reports["containment"]
    message = report.tasks[0].message
    assert "attempts:" in message, report.table()  # the notebook ran and reported what it tried
    for attack in ("write_out", "delete_out", "write_beside", "read_master", "read_secret", "net",
                   "write_package"):
        assert f"{attack}=no" in message, message
    assert sorted(p.name for p in attacked.victims.iterdir()) == ["victim.txt"]
    assert not attacked.paths["containment"].with_name("beside.txt").exists()
    assert not attacked.planted.exists()


@contained
def test_a_detached_process_cannot_rewrite_the_report_afterwards(attacked):
    assert attacked.daemon_gone  # killed with the sandbox at the end of grading
    saved = json.loads(attacked.paths["containment"].with_name("99_grading.grade.json").read_text())
    assert saved["score"] == 0 and saved["max_score"] == 3 and saved["sandbox"] == "bubblewrap"


def test_ctrl_c_stops_otter_its_kernel_and_what_they_started(course, tmp_path):
    marker = f"greenlab-attack-{secrets.token_hex(6)}"
    daemon = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
              f"'import time; time.sleep(600)', {marker!r}], start_new_session=True)\n")
    path = tmp_path / MASTER.name
    path.write_text(json.dumps(_attack(course.stub, daemon, "while True:\n    pass\n")))
    proc = subprocess.Popen([sys.executable, "-m", "greenlab.course.grade", str(path), "--master",
                             str(course.master)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    try:
        deadline = time.monotonic() + 240
        while not alive(marker) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(marker), "the notebook never started its daemon"
        started = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: grading stopped" in err
    assert gone(marker)
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not path.with_name("99_grading.grade.json").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_a_timeout_that_never_fires_is_refused(course, value, capsys):
    assert grade.main([str(course.exercise), "--master", str(course.master), "--timeout", value]) == 2
    assert "--timeout must be a finite number of seconds > 0" in capsys.readouterr().err


def test_the_report_never_overwrites_the_notebook(course, tmp_path, capsys):
    path = tmp_path / MASTER.name
    path.write_text(course.stub, encoding="utf-8")
    for target in (path, tmp_path / "." / MASTER.name, tmp_path / "other.ipynb"):
        assert grade.main([str(path), "--master", str(course.master), "--json", str(target)]) == 2
        assert "--json must not be a notebook" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == course.stub
    with pytest.raises(TypeError, match="timeout_s must be a number of seconds, got str"):
        grade.grade(path, master=course.master, timeout_s="300")
    with pytest.raises(ValueError, match="sandbox must be 'auto', 'require' or 'off'"):
        grade.grade(path, master=course.master, sandbox_mode="maybe")
    (tmp_path / "fake.zip").write_text("not a zip")
    assert grade.main([str(path), "--autograder", str(tmp_path / "fake.zip")]) == 2
    assert "--autograder must be an existing zip file" in capsys.readouterr().err
