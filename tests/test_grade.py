"""The grading pipeline on a tiny fixture master (tests/fixtures/99_grading.ipynb: 2 tasks, 1 hidden test).

Generation (otter assign) strips solutions and hidden tests and gives the same bytes every run;
grading (otter run, in a subprocess) scores a solved notebook fully and the generated stub 0, and a
notebook that raises, loops forever or is not JSON still gets a table with the reason, the
learner's file untouched. The three gradings run concurrently to keep the suite fast.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from greenlab.course import autograder, grade

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "tests" / "fixtures" / "99_grading.ipynb"


def _load_tool():
    spec = importlib.util.spec_from_file_location("exercises_tool", ROOT / "tools" / "exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": source}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Generate the exercise twice (determinism) and keep the autograder zip."""
    tool = _load_tool()
    tmp = tmp_path_factory.mktemp("grade")
    build_dir = tmp / "build"
    first = tool.build(MASTER, tmp / "one", build_dir)
    second = tool.build(MASTER, tmp / "two", build_dir)
    (zip_path,) = build_dir.glob("*.zip")
    exercise = tmp / "exercises" / MASTER.name
    exercise.parent.mkdir()
    exercise.write_text(first, encoding="utf-8")
    return types.SimpleNamespace(tool=tool, tmp=tmp, first=first, second=second, zip=zip_path,
                                 exercise=exercise, build_dir=build_dir)


@pytest.fixture(scope="module")
def graded(built):
    """Grade, concurrently: the stub, the master itself plus a raising cell, an endless loop."""
    tmp = built.tmp
    stub = built.exercise
    raises = tmp / "raises" / MASTER.name  # the master as a submission: solved, no otter name
    raises.parent.mkdir()
    nb = json.loads(MASTER.read_text(encoding="utf-8"))
    nb["cells"].append(_code_cell("raise RuntimeError('boom')"))
    raises.write_text(json.dumps(nb), encoding="utf-8")
    loops = tmp / "loops" / MASTER.name
    loops.parent.mkdir()
    nb = json.loads(built.first)
    nb["cells"].insert(4, _code_cell("while True:\n    pass"))
    loops.write_text(json.dumps(nb), encoding="utf-8")
    prints = tmp / "prints" / MASTER.name
    prints.parent.mkdir()
    nb = json.loads(built.first)
    nb["cells"].insert(4, _code_cell("print('x' * 50_000_000)"))
    prints.write_text(json.dumps(nb), encoding="utf-8")
    before = {p: _digest(p) for p in (stub, raises, loops, prints)}
    jobs = {"stub": (stub, 240), "raises": (raises, 240), "loops": (loops, 8), "prints": (prints, 240)}
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {k: pool.submit(grade.grade, p, autograder_zip=built.zip, timeout_s=t)
                   for k, (p, t) in jobs.items()}
        reports = {k: f.result() for k, f in futures.items()}
    return types.SimpleNamespace(reports=reports, paths={k: p for k, (p, _) in jobs.items()},
                                 before=before)


def test_generation_is_deterministic_and_strips_solutions_and_hidden_tests(built):
    assert built.first == built.second
    nb = json.loads(built.first)
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "return 2 * x" not in code and "BEGIN SOLUTION" not in code  # both marker styles
    assert "def double(x):\n    ..." in code and "def zero_fraction(values):\n    ..." in code
    assert 'grader.check("q1")' in code and 'grader.check("q2")' in code
    tests = nb["metadata"]["otter"]["tests"]
    assert set(tests) == {"q1", "q2"} and "test_zero_fraction_2d" not in tests["q2"]
    assert nb["metadata"]["otter"]["assignment_name"] == "99_grading"
    assert all("id" not in c for c in nb["cells"]) and nb["nbformat_minor"] == 4
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    colab = tags.index(["colab-setup"])
    assert 'gl.grade.notebook("99_grading.ipynb")' in "".join(nb["cells"][colab + 1]["source"])
    assert tags.index(["badges"]) == 1  # below the title, though the master has it above
    assert "exercises/99_grading.ipynb" in "".join(nb["cells"][1]["source"])
    assert built.tool.problems(built.exercise, MASTER) == []


def test_points_come_from_the_zip_or_its_verified_record(built, tmp_path):
    bare = tmp_path / "bare.zip"  # a zip from elsewhere, without the record beside it
    bare.write_bytes(built.zip.read_bytes())
    assert autograder.questions(bare) == autograder.questions(built.zip) == {"q1": 2.0, "q2": 1.0}
    record = json.loads(built.zip.with_suffix(".json").read_text())
    assert record["sha256"] == _digest(built.zip) and record["points"] == {"q1": 2.0, "q2": 1.0}
    forged = dict(record, sha256="0" * 64, points={"q1": 75.0, "q2": 75.0})
    bare.with_suffix(".json").write_text(json.dumps(forged))  # a record that is not this zip's
    assert autograder.questions(bare) == {"q1": 2.0, "q2": 1.0}


def test_check_mode_reports_drift_and_leaked_solutions(built, tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    exercises.mkdir()
    (solutions / MASTER.name).write_bytes(MASTER.read_bytes())
    (exercises / MASTER.name).write_text(built.first, encoding="utf-8")
    (exercises / "42_orphan.ipynb").write_text(built.first, encoding="utf-8")
    args = ["--solutions", str(solutions), "--exercises", str(exercises), "--build",
            str(built.build_dir), "--check"]
    assert built.tool.main(args) == 1
    err = capsys.readouterr().err
    assert "42_orphan.ipynb: no master" in err and "99_grading.ipynb" not in err
    leaked = json.loads(built.first)
    answer = next(c for c in leaked["cells"] if "".join(c["source"]).startswith("def zero_"))
    answer["source"] = "def zero_fraction(values):\n    # BEGIN SOLUTION\n    return 0.0"
    (exercises / MASTER.name).write_text(json.dumps(leaked), encoding="utf-8")
    (exercises / "42_orphan.ipynb").unlink()
    assert built.tool.main(args) == 1
    err = capsys.readouterr().err
    assert "differs from what `make exercises` generates" in err
    assert "still holds a solution marker" in err


def test_solved_notebook_gets_full_points_and_a_raising_cell_is_reported(graded):
    report = graded.reports["raises"]
    assert report.status == "graded", report.table()
    assert (report.score, report.max_score) == (3.0, 3.0), report.table()
    assert all(t.passed and t.message == "" for t in report.tasks)
    assert any("RuntimeError: boom" in n for n in report.notes), report.notes


def test_generated_stub_scores_zero_with_the_checks_messages(graded):
    report = graded.reports["stub"]
    assert report.status == "graded" and report.score == 0 and report.max_score == 3
    q1, q2 = report.tasks
    assert (q1.task, q1.max, q1.passed) == ("q1", 2.0, False)
    assert q1.message == "CheckFailed: double(2) is None: did you return it?"
    assert "zero_fraction([0, 1, 0, 2]) is None" in q2.message  # the public test's message
    assert "a hidden test failed (CheckFailed)" in q2.message  # the hidden test counts too,
    assert "[[0, 0], [0, 3]]" not in q2.message  # but its inputs are not quoted
    saved = json.loads(graded.paths["stub"].with_name("99_grading.grade.json").read_text())
    assert saved["score"] == 0 and [t["task"] for t in saved["tasks"]] == ["q1", "q2"]
    assert "q1" in report.table() and "did you return it?" in report.table()


def test_endless_loop_is_stopped_with_the_reason(graded):
    report = graded.reports["loops"]
    assert report.status == "timeout" and report.score == 0 and report.max_score == 3
    assert all("not finished after 8 s" in t.message for t in report.tasks)


def test_50_mb_of_output_still_gets_a_table(graded):
    report = graded.reports["prints"]
    assert report.status == "graded" and report.max_score == 3 and report.score == 0, report.table()
    assert [t.task for t in report.tasks] == ["q1", "q2"]


def test_learners_files_are_never_modified(graded):
    assert {p: _digest(p) for p in graded.before} == graded.before


def test_malformed_json_gives_a_table_with_the_reason(built, tmp_path, capsys):
    broken = tmp_path / "99_grading.ipynb"
    broken.write_text(built.first[:300], encoding="utf-8")
    before = broken.read_bytes()
    out = tmp_path / "report.json"
    assert grade.main([str(broken), "--autograder", str(built.zip), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not a valid notebook" in printed and "q2" in printed
    saved = json.loads(out.read_text())
    assert saved["status"] == "invalid" and saved["max_score"] == 3 and saved["score"] == 0
    assert broken.read_bytes() == before


def test_cli_usage_errors_are_clear(tmp_path, capsys):
    assert grade.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "path must be an existing notebook file" in capsys.readouterr().err
    lone = tmp_path / "17_nothing.ipynb"
    lone.write_text("{}", encoding="utf-8")
    assert grade.main([str(lone)]) == 2
    assert "no master solutions/17_nothing.ipynb" in capsys.readouterr().err
    assert grade.main([str(lone), "--timeout", "0"]) == 2
    assert "--timeout must be a finite number of seconds > 0" in capsys.readouterr().err
    assert grade.main([str(lone), "--sandbox", "off", "--lesson", "1"]) == 2
    assert "must be a lesson name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.main([])


def test_run_question_still_reads_both_solution_styles():
    assert set(autograder.question_tests(MASTER)) == {"q1", "q2"}
    assert all(r.passed for r in autograder.run_question(MASTER, "q2", {
        "zero_fraction": lambda v: float((__import__("numpy").asarray(v) == 0).mean())}))
    (result,) = autograder.run_question(MASTER, "q1", {"double": lambda x: x + x + 1})
    assert not result.passed and result.message == "CheckFailed: double(2) should be 4, got 5"


def test_colab_reads_the_checks_from_the_open_notebook(built, monkeypatch, tmp_path):
    nb = json.loads(built.first)
    message = types.ModuleType("google.colab._message")
    message.blocking_request = lambda *a, **k: {"ipynb": copy.deepcopy(nb)}
    colab = types.ModuleType("google.colab")
    colab._message = message
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    monkeypatch.chdir(tmp_path)  # no notebook file here, as on Colab
    grader = grade.notebook("99_grading.ipynb")
    assert grader.check("q1", {"double": lambda x: 2 * x}).passed_all
    failed = grader.check("q1", {"double": lambda x: None})
    assert not failed.passed_all and "did you return it?" in repr(failed)


def test_a_renamed_copy_is_found_by_its_assignment_name(built, monkeypatch, tmp_path):
    (tmp_path / "99_grading-Copy1.ipynb").write_text(built.first, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    grader = grade.notebook("99_grading.ipynb")
    assert not grader.check("q2", {"zero_fraction": lambda v: 0.0}).passed_all
    with pytest.raises(FileNotFoundError, match="open the exercise"):
        grade.notebook("01_baselines.ipynb")
